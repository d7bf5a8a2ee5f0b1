// hub_fetch_model against a hub on loopback (tests/support/fake_hub.h): which files it picks, the
// cache layout it writes, resumed transfers, refused files, gated repositories, offline mode.
#include "../../tests/support/fake_hub.h"
#include "dior.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <random>

namespace fs = std::filesystem;
using dior::test::fake_hub;

namespace {

std::string random_bytes(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string  s(n, '\0');
    for (auto & c : s) {
        c = (char)(rng() & 0xff);
    }
    return s;
}

std::string read_all(const std::string & p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string sha256_of(const std::string & bytes) {
    dior::digest d("sha256");
    d.update(bytes.data(), bytes.size());
    return d.hex();
}

class Hub : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char * v :
             { "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME" }) {
            unsetenv(v);
        }
        cache = fs::temp_directory_path() / ("dior-hub-test-" + std::to_string(getpid()) + "-" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(cache);
        auto & r                          = hub.repos["ggml-org/VL-GGUF"];
        r.files["README.md"]              = { "# a model card\n", false };
        r.files["VL-Q4_K_M.gguf"]         = { random_bytes(300000, 1) };
        r.files["VL-Q8_0.gguf"]           = { random_bytes(200000, 2) };
        r.files["VL-f16.gguf"]            = { random_bytes(100000, 3) };
        r.files["mmproj-VL-f16.gguf"]     = { random_bytes(150000, 4) };
        r.files["mmproj-VL-Q8_0.gguf"]    = { random_bytes(120000, 5), false };  // a git blob, not LFS
        r.files["imatrix-VL-Q4_K_M.gguf"] = { random_bytes(1000, 6) };
    }

    void TearDown() override { fs::remove_all(cache); }

    dior::hub_options opts() const {
        dior::hub_options o;
        o.endpoint  = hub.base();
        o.cache_dir = cache.string();
        return o;
    }

    std::string bytes(const std::string & path) { return hub.repos["ggml-org/VL-GGUF"].files[path].bytes; }

    fake_hub hub;
    fs::path cache;
};

TEST_F(Hub, DefaultQuantAndNearestMmprojIntoTheHfCacheLayout) {
    const dior::hub_model m    = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    const fs::path        repo = cache / "models--ggml-org--VL-GGUF";
    const std::string     commit(40, 'c');
    EXPECT_EQ(m.repo, "ggml-org/VL-GGUF");
    EXPECT_EQ(m.commit, commit);
    EXPECT_EQ(m.model, (repo / "snapshots" / commit / "VL-Q4_K_M.gguf").string());
    ASSERT_EQ(m.model_parts.size(), 1u);
    // Q4_K_M is 4 bits: the Q8_0 projector (8) is nearer than the f16 one (16)
    EXPECT_EQ(m.mmproj, (repo / "snapshots" / commit / "mmproj-VL-Q8_0.gguf").string());
    EXPECT_EQ(read_all(m.model), bytes("VL-Q4_K_M.gguf"));
    EXPECT_EQ(read_all(m.mmproj), bytes("mmproj-VL-Q8_0.gguf"));
    // huggingface_hub's layout: relative links into blobs/ named by the LFS SHA-256 (or git id)
    EXPECT_TRUE(fs::is_symlink(m.model));
    EXPECT_EQ(fs::read_symlink(m.model), fs::path("../../blobs") / sha256_of(bytes("VL-Q4_K_M.gguf")));
    EXPECT_TRUE(fs::is_regular_file(repo / "blobs" / sha256_of(bytes("VL-Q4_K_M.gguf"))));
    EXPECT_EQ(read_all((repo / "refs" / "main").string()), commit);
    for (const auto & e : fs::directory_iterator(repo / "blobs")) {
        EXPECT_EQ(e.path().extension(), "") << e.path();  // no .incomplete left
    }
    // only the two files were fetched
    EXPECT_EQ(hub.count("/resolve/"), 2u);
    EXPECT_EQ(hub.count("/VL-Q8_0.gguf"), 0u);

    // a second call finds them in the cache: nothing is transferred again
    const dior::hub_model again = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    EXPECT_EQ(again.model, m.model);
    EXPECT_EQ(hub.count("/resolve/"), 2u);
}

TEST_F(Hub, QuantTagPicksTheFileCaseInsensitively) {
    dior::hub_model m = dior::hub_fetch_model("ggml-org/VL-GGUF:q8_0", opts());
    EXPECT_EQ(fs::path(m.model).filename(), "VL-Q8_0.gguf");
    EXPECT_EQ(fs::path(m.mmproj).filename(), "mmproj-VL-Q8_0.gguf");
    m = dior::hub_fetch_model("ggml-org/VL-GGUF:F16", opts());
    EXPECT_EQ(fs::path(m.model).filename(), "VL-f16.gguf");
    EXPECT_EQ(fs::path(m.mmproj).filename(), "mmproj-VL-f16.gguf");
    EXPECT_EQ(read_all(m.mmproj), bytes("mmproj-VL-f16.gguf"));
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF:Q2_K", opts());
        FAIL() << "a quantization the repository lacks must fail";
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("Q2_K"), std::string::npos) << msg;
        EXPECT_NE(msg.find("VL-Q4_K_M.gguf"), std::string::npos) << "the files it has are listed: " << msg;
    }
}

TEST_F(Hub, SplitModelNestedFoldersAndPagedListing) {
    auto & r                                         = hub.repos["owner/split"];
    r.page_size                                      = 2;  // the listing comes in pages linked by Link: rel="next"
    r.commit                                         = std::string(40, 'd');
    r.files["Q4_K_M/big-Q4_K_M-00001-of-00003.gguf"] = { random_bytes(5000, 7) };
    r.files["Q4_K_M/big-Q4_K_M-00002-of-00003.gguf"] = { random_bytes(5000, 8) };
    r.files["Q4_K_M/big-Q4_K_M-00003-of-00003.gguf"] = { random_bytes(5000, 9) };
    r.files["Q8_0/big-Q8_0.gguf"]                    = { random_bytes(5000, 10) };
    r.files["mmproj-big-f16.gguf"]                   = { random_bytes(5000, 11) };
    r.files["zz/mmproj-elsewhere-Q4_K_M.gguf"]       = { random_bytes(5000, 12) };  // not above the model
    const dior::hub_model m                          = dior::hub_fetch_model("owner/split", opts());
    ASSERT_EQ(m.model_parts.size(), 3u);
    EXPECT_EQ(m.model, m.model_parts[0]);
    for (int i = 0; i < 3; ++i) {
        const std::string p = "Q4_K_M/big-Q4_K_M-0000" + std::to_string(i + 1) + "-of-00003.gguf";
        EXPECT_EQ(
            fs::path(m.model_parts[i]).lexically_relative(cache / "models--owner--split" / "snapshots" / r.commit), p);
        EXPECT_EQ(read_all(m.model_parts[i]), r.files[p].bytes);  // the relative link of a nested path resolves
    }
    EXPECT_EQ(fs::path(m.mmproj).filename(), "mmproj-big-f16.gguf");
    EXPECT_GE(hub.count("/tree/"), 3u);
}

TEST_F(Hub, BrokenTransferIsResumedWithARange) {
    auto & f                = hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"];
    f.cut_times             = 1;
    f.cut_after             = 100000;
    const dior::hub_model m = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    EXPECT_EQ(read_all(m.model), bytes("VL-Q4_K_M.gguf"));
    bool resumed = false;
    for (const auto & q : hub.requests()) {
        resumed |= q.path.find("VL-Q4_K_M.gguf") != std::string::npos && q.range == "bytes=100000-";
    }
    EXPECT_TRUE(resumed) << "the second request continues where the first one broke off";
}

TEST_F(Hub, APartialFileFromAnEarlierRunIsContinued) {
    auto & f    = hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"];
    f.cut_times = 100;  // every attempt breaks off
    f.cut_after = 10000;
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
        FAIL() << "a transfer that never completes must fail";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("run again to resume"), std::string::npos) << e.what();
    }
    const fs::path part =
        cache / "models--ggml-org--VL-GGUF" / "blobs" / (sha256_of(bytes("VL-Q4_K_M.gguf")) + ".incomplete");
    ASSERT_TRUE(fs::exists(part));
    const uint64_t have = fs::file_size(part);
    EXPECT_GT(have, 10000u);  // several attempts, each continuing the last
    EXPECT_LT(have, 300000u);
    {
        auto l      = hub.lock();
        f.cut_times = 0;
    }
    const dior::hub_model m = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    EXPECT_EQ(read_all(m.model), bytes("VL-Q4_K_M.gguf"));
    bool continued = false;
    for (const auto & q : hub.requests()) {
        continued |= q.range == "bytes=" + std::to_string(have) + "-";
    }
    EXPECT_TRUE(continued);
    EXPECT_FALSE(fs::exists(part));
}

// Transfers that break off before their first byte keep nothing: the message does not promise a
// resume.
TEST_F(Hub, ATransferThatKeptNothingDoesNotPromiseAResume) {
    auto & f    = hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"];
    f.cut_times = 100;
    f.cut_after = 0;
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
        FAIL() << "a transfer that never sends a byte must fail";
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("nothing was kept; run again to start it again"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("resume"), std::string::npos) << msg;
    }
}

// A server that sends the file and then more without end (no Content-Length): dior writes the
// listed size and stops reading; the right bytes make the right file, junk is refused by its hash
// with a message that does not promise a resume.
TEST_F(Hub, AnEndlessTransferStopsAtTheListedSize) {
    auto & f                = hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"];
    f.endless               = true;
    const dior::hub_model m = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    EXPECT_EQ(read_all(m.model), bytes("VL-Q4_K_M.gguf"));
    EXPECT_LT(f.sent->load(), bytes("VL-Q4_K_M.gguf").size() + (8u << 20))  // stopped soon after
        << "dior read " << f.sent->load() << " bytes of an endless answer";

    fs::remove_all(cache);  // both files again, the projector now junk after its size
    auto & g  = hub.repos["ggml-org/VL-GGUF"].files["mmproj-VL-Q8_0.gguf"];
    g.endless = true;
    g.corrupt = true;
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
        FAIL() << "junk must be refused";
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("is not the hub's file"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("resume"), std::string::npos) << msg;
    }
    EXPECT_LT(g.sent->load(), bytes("mmproj-VL-Q8_0.gguf").size() + (8u << 20));
}

TEST_F(Hub, AFileThatIsNotTheHubsIsRefusedAndRemoved) {
    hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"].corrupt = true;
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
        FAIL() << "a file whose SHA-256 differs from the hub's must be refused";
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("SHA-256"), std::string::npos) << msg;
        EXPECT_NE(msg.find("VL-Q4_K_M.gguf"), std::string::npos) << msg;
    }
    const fs::path repo = cache / "models--ggml-org--VL-GGUF";
    const fs::path blob = repo / "blobs" / sha256_of(bytes("VL-Q4_K_M.gguf"));
    EXPECT_FALSE(fs::exists(blob));
    EXPECT_FALSE(fs::exists(blob.string() + ".incomplete"));
    EXPECT_FALSE(fs::exists(repo / "snapshots" / std::string(40, 'c') / "VL-Q4_K_M.gguf"));

    // the same for a git (non-LFS) file, checked by its blob id
    hub.repos["ggml-org/VL-GGUF"].files["VL-Q4_K_M.gguf"].corrupt      = false;
    hub.repos["ggml-org/VL-GGUF"].files["mmproj-VL-Q8_0.gguf"].corrupt = true;
    EXPECT_THROW(dior::hub_fetch_model("ggml-org/VL-GGUF", opts()), dior::error);
}

TEST_F(Hub, GatedRepositoryNeedsTheRightToken) {
    hub.repos["ggml-org/VL-GGUF"].token = "hf_rightrightrightrightrightrightright";
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
        FAIL();
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("gated"), std::string::npos) << msg;
        EXPECT_NE(msg.find("HF_TOKEN"), std::string::npos) << msg;
        EXPECT_NE(msg.find(hub.base() + "/ggml-org/VL-GGUF"), std::string::npos) << "where to accept: " << msg;
    }
    dior::hub_options o = opts();
    o.token             = "hf_wrongwrongwrongwrongwrongwrongwrong";
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF", o);
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("no access"), std::string::npos) << e.what();
    }
    setenv("HF_TOKEN", "hf_rightrightrightrightrightrightright", 1);
    const dior::hub_model m = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    unsetenv("HF_TOKEN");
    EXPECT_EQ(read_all(m.model), bytes("VL-Q4_K_M.gguf"));
    // the token was sent to the hub, and followed the redirect on the same host only
    for (const auto & q : hub.requests()) {
        if (q.path.find("/resolve/") != std::string::npos) {
            EXPECT_EQ(q.authorization.rfind("Bearer ", 0), 0u);
        }
    }
    // a token file under HF_HOME is read too
    const fs::path home = cache / "home";
    fs::create_directories(home);
    std::ofstream(home / "token") << "hf_rightrightrightrightrightrightright\n";
    setenv("HF_HOME", home.c_str(), 1);
    o.token = "";
    EXPECT_NO_THROW(dior::hub_fetch_model("ggml-org/VL-GGUF:Q8_0", o));
    unsetenv("HF_HOME");
}

TEST_F(Hub, OfflineAndUnreachableUseTheCacheOnly) {
    const dior::hub_model m      = dior::hub_fetch_model("ggml-org/VL-GGUF", opts());
    const size_t          before = hub.requests().size();
    dior::hub_options     o      = opts();
    o.offline                    = true;
    dior::hub_model off          = dior::hub_fetch_model("ggml-org/VL-GGUF", o);
    EXPECT_EQ(off.model, m.model);
    EXPECT_EQ(off.mmproj, m.mmproj);
    EXPECT_EQ(hub.requests().size(), before) << "offline mode asks the hub nothing";
    setenv("HF_HUB_OFFLINE", "1", 1);
    EXPECT_EQ(dior::hub_fetch_model("ggml-org/VL-GGUF", opts()).model, m.model);
    EXPECT_EQ(hub.requests().size(), before);
    // what the cache lacks cannot be had offline: a quantization never fetched, a repository never seen
    try {
        dior::hub_fetch_model("ggml-org/VL-GGUF:Q8_0", opts());
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("VL-Q4_K_M.gguf"), std::string::npos) << e.what();
    }
    try {
        dior::hub_fetch_model("other/repo", opts());
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("offline"), std::string::npos) << e.what();
    }
    unsetenv("HF_HUB_OFFLINE");
    // a hub that cannot be reached: the cache answers
    o          = opts();
    o.endpoint = "http://127.0.0.1:9";
    EXPECT_EQ(dior::hub_fetch_model("ggml-org/VL-GGUF", o).model, m.model);
    // ... but a removed blob is not taken for cached
    fs::remove(fs::read_symlink(m.mmproj).is_absolute()
                   ? fs::read_symlink(m.mmproj)
                   : fs::path(m.mmproj).parent_path() / fs::read_symlink(m.mmproj));
    EXPECT_TRUE(dior::hub_fetch_model("ggml-org/VL-GGUF", o).mmproj.empty());
}

TEST_F(Hub, BadNamesAndUnknownRepositoriesAreReported) {
    for (const char * bad : { "noslash", "a/b/c", "../x", "a/..", "a/b:", "a/b:Q4 K", "" }) {
        EXPECT_THROW(dior::hub_fetch_model(bad, opts()), dior::error) << bad;
    }
    try {
        dior::hub_fetch_model("nobody/nothing", opts());
        FAIL();
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("nobody/nothing"), std::string::npos) << msg;
    }
    EXPECT_FALSE(fs::exists(cache / "models--nobody--nothing" / "snapshots"));
}

// A repository of safetensors only (the original checkpoint of a model, or one mtmd cannot serve,
// such as Llama 3.2 Vision): refused, naming what dior needs and the families it is tested with.
TEST_F(Hub, ARepositoryWithoutGgufNamesWhatDiorNeeds) {
    auto & r                     = hub.repos["meta-llama/Llama-3.2-11B-Vision-Instruct"];
    r.files["model.safetensors"] = { random_bytes(1000, 21) };
    r.files["config.json"]       = { "{}", false };
    try {
        dior::hub_fetch_model("meta-llama/Llama-3.2-11B-Vision-Instruct", opts());
        FAIL() << "no error";
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("no GGUF model in meta-llama/Llama-3.2-11B-Vision-Instruct"), std::string::npos) << msg;
        EXPECT_NE(msg.find("mmproj"), std::string::npos) << msg;
        EXPECT_NE(msg.find("Gemma 3"), std::string::npos) << msg;
    }
}

TEST_F(Hub, HostileListingsCannotWriteOutsideTheCache) {
    auto & r                               = hub.repos["evil/repo"];
    r.files["../../../escape-Q4_K_M.gguf"] = { "x" };
    r.files["/abs/escape-Q4_K_M.gguf"]     = { "x" };
    r.files["good-Q4_K_M.gguf"]            = { "fine" };
    const dior::hub_model m                = dior::hub_fetch_model("evil/repo", opts());
    EXPECT_EQ(fs::path(m.model).filename(), "good-Q4_K_M.gguf");
    EXPECT_FALSE(fs::exists(cache.parent_path() / "escape-Q4_K_M.gguf"));
    EXPECT_TRUE(m.mmproj.empty());
}

}  // namespace
