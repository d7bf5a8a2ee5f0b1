// dior serve on loopback: every endpoint, bad requests, the API key, many clients at once, the
// bounded embedding queue and a graceful stop. The page in a real browser: tests/browser/pages_test.py.
#include "../../tests/support/sample_store.h"
#include "dior.h"
#include "dior_json.h"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <poll.h>
#include <random>
#include <regex>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace {

std::string read(const fs::path & p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string b64(const std::string & bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    out.resize((size_t)EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                       reinterpret_cast<const unsigned char *>(bytes.data()), (int)bytes.size()));
    return out;
}

long rss_kb(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(f, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

// A running `dior serve` on a free loopback port.
struct server {
    pid_t    pid  = -1;
    int      port = 0;
    fs::path log;

    server(const dior::test::sample_store & s, const std::vector<std::string> & extra, const std::string & name) {
        log                           = s.dir / (name + ".log");
        std::vector<std::string> args = { dior::test::dior_bin(), "serve",  "--db", s.db.string(), "--eval",
                                          s.eval.string(),        "--port", "0",    "-t",          "2" };
        args.insert(args.end(), extra.begin(), extra.end());
        pid = dior::test::spawn(args, log.string());
        const std::regex re("http://127\\.0\\.0\\.1:(\\d+)/");
        for (int i = 0; i < 300 && port == 0; ++i) {  // 30 s at most
            std::smatch       m;
            const std::string text = read(log);
            if (std::regex_search(text, m, re)) {
                port = std::stoi(m[1]);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }
    }
    ~server() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            dior::test::wait_for(pid);
        }
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(120, 0);
        return c;
    }
    int stop() {  // SIGTERM; the exit status
        kill(pid, SIGTERM);
        const int st = dior::test::wait_for(pid);
        pid          = -1;
        return st;
    }
};

json body_of(const httplib::Result & r) {
    return json::parse(r->body);
}

class Serve : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dior_serve_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        s_ = dior::test::make_sample_store(dir_, 8);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static json post(httplib::Client & c, const std::string & path, const json & body, int want = 200) {
        auto r = c.Post(path, body.dump(), "application/json");
        EXPECT_TRUE(r) << "no answer";
        if (!r) {
            return json();
        }
        EXPECT_EQ(r->status, want) << r->body;
        EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
        return body_of(r);
    }

    static fs::path                 dir_;
    static dior::test::sample_store s_;
};

fs::path                 Serve::dir_;
dior::test::sample_store Serve::s_;

TEST_F(Serve, EveryEndpointAnswers) {
    server srv(s_, {}, "endpoints");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    auto c = srv.client();

    auto r = c.Get("/api/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(body_of(r)["ok"], true);
    EXPECT_EQ(body_of(r)["auth"], false);

    r = c.Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("dior: nearest neighbours under each condition"), std::string::npos);

    r                   = c.Get("/api/settings");
    const json settings = body_of(r)["settings"];
    ASSERT_EQ(settings.size(), 2u);
    const int64_t id = settings[0]["id"];
    EXPECT_EQ(settings[0]["images"], 8);
    EXPECT_EQ(settings[0]["can_embed"], true);

    r = c.Get("/api/images?setting=" + std::to_string(id) + "&limit=3&offset=2");
    EXPECT_EQ(body_of(r)["total"], 8);
    EXPECT_EQ(body_of(r)["paths"], json({ s_.paths[2], s_.paths[3], s_.paths[4] }));

    r = c.Get("/api/thumbnail?size=64&path=" + httplib::encode_uri_component(s_.paths[1]));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
    const dior::image t = dior::decode_image((const uint8_t *)r->body.data(), r->body.size(), "thumb", 0);
    EXPECT_EQ(std::max(t.width, t.height), 64);
    r = c.Get("/api/thumbnail?path=" + httplib::encode_uri_component("/etc/passwd"));
    EXPECT_EQ(r->status, 404) << "only images of the store are served";
    EXPECT_NE(body_of(r)["error"].get<std::string>().find("no image"), std::string::npos);

    r = c.Get("/api/eval");
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(body_of(r)["results"].size(), 2u);
    r = c.Get("/eval");
    EXPECT_NE(r->body.find("<table class=\"results\">"), std::string::npos);
    EXPECT_NE(r->body.find("<table class=\"clustering\">"), std::string::npos);
    EXPECT_NE(r->body.find("<span class=\"spread\">"), std::string::npos);

    // search by a stored path: as dior search answers
    const json j = post(c, "/api/search", { { "settings", { id } }, { "path", s_.paths[4] }, { "k", 3 } });
    ASSERT_EQ(j["results"].size(), 1u);
    EXPECT_TRUE(j["results"][0]["query_stored"].get<bool>());
    const auto cli = dior::test::run_shell(dior::test::dior_bin() + " search --json --db " + s_.db.string() +
                                           " --setting " + std::to_string(id) + " -k 3 '" + s_.paths[4] + "'");
    ASSERT_EQ(cli.status, 0) << cli.output;
    EXPECT_EQ(j["results"][0]["neighbors"], json::parse(cli.output)["results"][0]["neighbors"]);

    // an upload of a stored image's bytes is found by content; a new image is embedded
    const json up = post(c, "/api/search",
                         { { "conditions", { "texture type", "fabric type" } }, { "image", b64(read(s_.paths[4])) } });
    ASSERT_EQ(up["results"].size(), 2u);
    EXPECT_TRUE(up["results"][0]["query_stored"].get<bool>());
    const fs::path img = dir_ / "fresh.bmp";
    dior::test::write_bmp(img.string(), 50, 36, dior::test::pattern_rgb(50, 36, 9));
    const json fresh = post(c, "/api/search", { { "settings", { id } }, { "image", b64(read(img)) }, { "k", 8 } });
    EXPECT_FALSE(fresh["results"][0]["query_stored"].get<bool>());
    EXPECT_EQ(fresh["results"][0]["neighbors"].size(), 8u);
    const auto cli2 = dior::test::run_shell(dior::test::dior_bin() + " search --json -t 2 --db " + s_.db.string() +
                                            " --setting " + std::to_string(id) + " -k 8 " + img.string());
    EXPECT_EQ(fresh["results"][0]["neighbors"],
              json::parse(cli2.output.substr(cli2.output.find('{')))["results"][0]["neighbors"]);

    // embed: a stored image under its own setting gives its stored vector; a new condition is
    // embedded with the model of a DIOR setting
    const json               e = post(c, "/api/embed", { { "settings", { id } }, { "image", b64(read(s_.paths[0])) } });
    auto                     st = dior::store::open(s_.db.string(), true);
    std::vector<std::string> paths;
    const dior::matrix       x = st->vectors(id, &paths);
    const std::vector<float> stored(x.data.begin(), x.data.begin() + (long)x.cols);  // paths[0] is row 0
    EXPECT_EQ(e["results"][0]["vector"].get<std::vector<float>>(), stored);
    const json nc = post(c, "/api/embed", { { "conditions", { "car color" } }, { "image", b64(read(img)) } });
    EXPECT_EQ(nc["results"][0]["setting"]["condition"], "car color");
    EXPECT_TRUE(nc["results"][0]["setting"]["id"].is_null());
    EXPECT_EQ(nc["results"][0]["vector"].size(), x.cols);
    EXPECT_EQ(srv.stop(), 0);
    EXPECT_NE(read(srv.log).find("dior serve: stopped"), std::string::npos);
}

TEST_F(Serve, BadRequestsGetJsonErrors) {
    server srv(s_, { "--max-body-mb", "1" }, "bad");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    auto       c   = srv.client();
    const auto err = [&](const std::string & path, const std::string & body, int status, const std::string & says) {
        auto r = c.Post(path, body, "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, status) << body.substr(0, 80) << " -> " << r->body;
        const json j = json::parse(r->body);
        EXPECT_NE(j["error"].get<std::string>().find(says), std::string::npos) << j.dump();
    };
    err("/api/search", "{ \"settings\": [1], ", 400, "malformed JSON");
    err("/api/search", "[1, 2]", 400, "must be a JSON object");
    err("/api/search", json({ { "settings", { 1 } } }).dump(), 400, "one of them");
    err("/api/search", json({ { "settings", { 1 } }, { "path", s_.paths[0] }, { "image", "AAAA" } }).dump(), 400,
        "one of them");
    err("/api/search", json({ { "settings", { 1 } }, { "image", "not base64!" } }).dump(), 400, "base64");
    err("/api/search", json({ { "settings", { 1 } }, { "path", s_.paths[0] }, { "k", 0 } }).dump(), 400, "\"k\"");
    err("/api/search", json({ { "settings", { 77 } }, { "path", s_.paths[0] } }).dump(), 404, "no setting #77");
    err("/api/search", json({ { "settings", { 1 } }, { "path", "/nowhere.jpg" } }).dump(), 404, "no image");
    err("/api/search", json({ { "settings", { 1 } }, { "image", b64("this is no image at all") } }).dump(), 400,
        "upload");
    err("/api/search", json({ { "settings", "one" } }).dump(), 400, "malformed JSON");
    err("/api/nothing", "{}", 404, "no such route");
    err("/api/embed", std::string(2 * 1024 * 1024, 'x'), 413, "too large");
    auto r = c.Get("/api/images?setting=abc");
    EXPECT_EQ(r->status, 400);
    EXPECT_TRUE(json::parse(r->body).contains("error"));
    // still alive and well after all of it
    r = c.Get("/api/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
}

TEST_F(Serve, AnApiKeyGuardsTheDataButNotThePage) {
    server srv(s_, { "--api-key", "s3cret" }, "key");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    auto c = srv.client();
    auto r = c.Get("/api/settings");
    EXPECT_EQ(r->status, 401);
    EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("needs an API key"), std::string::npos);
    r = c.Get("/api/settings", httplib::Headers{ { "X-API-Key", "wrong" } });
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(json::parse(r->body)["error"], "wrong API key");
    r = c.Get("/api/settings", httplib::Headers{ { "X-API-Key", "s3cret" } });
    EXPECT_EQ(r->status, 200);
    r = c.Get("/api/settings", httplib::Headers{ { "Authorization", "Bearer s3cret" } });
    EXPECT_EQ(r->status, 200);
    r = c.Get("/eval?key=s3cret");
    EXPECT_EQ(r->status, 200);
    r = c.Get("/eval");
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(c.Get("/")->status, 200);
    EXPECT_EQ(json::parse(c.Get("/api/health")->body)["auth"], true);
}

// 16 clients at once, for a bounded number of requests: every answer right, memory flat.
TEST_F(Serve, SixteenClientsAtOnceGetRightAnswersAndMemoryStaysFlat) {
    server srv(s_, {}, "load");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    auto       c0    = srv.client();
    const json want  = post(c0, "/api/search", { { "settings", { 1, 2 } }, { "path", s_.paths[2] }, { "k", 5 } });
    const auto round = [&](int per_client) {
        std::atomic<int>         bad{ 0 }, done{ 0 };
        std::vector<std::thread> clients;
        for (int t = 0; t < 16; ++t) {
            clients.emplace_back([&, t] {
                httplib::Client c("127.0.0.1", srv.port);
                c.set_read_timeout(60, 0);
                for (int i = 0; i < per_client; ++i) {
                    httplib::Result r;
                    switch ((t + i) % 3) {
                        case 0:
                            r = c.Post("/api/search",
                                       json({ { "settings", { 1, 2 } }, { "path", s_.paths[2] }, { "k", 5 } }).dump(),
                                       "application/json");
                            bad += !r || r->status != 200 || json::parse(r->body) != want;
                            break;
                        case 1:
                            r = c.Get("/api/settings");
                            bad += !r || r->status != 200 || json::parse(r->body)["settings"].size() != 2;
                            break;
                        default:
                            r = c.Get("/api/thumbnail?size=48&path=" + httplib::encode_uri_component(s_.paths[t % 8]));
                            bad += !r || r->status != 200 || r->get_header_value("Content-Type") != "image/jpeg";
                    }
                    ++done;
                }
            });
        }
        for (auto & t : clients) {
            t.join();
        }
        EXPECT_EQ(bad.load(), 0);
        EXPECT_EQ(done.load(), 16 * per_client);
    };
    round(10);  // warm: indexes loaded, threads started
    const long before = rss_kb(srv.pid);
    for (int i = 0; i < 3; ++i) {
        round(20);
    }
    const long after = rss_kb(srv.pid);
    ASSERT_GT(before, 0);
    EXPECT_LT(after - before, 16 * 1024) << "RSS " << before << " kB -> " << after << " kB over 960 requests";
    std::fprintf(stderr, "[ serve ] RSS %ld kB after warm-up, %ld kB after 960 more requests from 16 clients\n", before,
                 after);
    EXPECT_EQ(srv.stop(), 0);
}

// --image-batch 3: uploads waiting with the same settings are embedded together, each gets its own
// vector (that of the same upload alone, to rounding), and a corrupt one among them gets its own 400.
TEST_F(Serve, UploadsWaitingTogetherAreEmbeddedTogether) {
    server srv(s_, { "--image-batch", "3", "--queue", "8", "-v" }, "batch");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    std::vector<std::string> uploads;
    for (int i = 0; i < 6; ++i) {
        const fs::path p = dir_ / ("together" + std::to_string(i) + ".bmp");
        dior::test::write_bmp(p.string(), 120 + 40 * i, 200, dior::test::pattern_rgb(120 + 40 * i, 200, 40 + i));
        uploads.push_back(b64(read(p)));
    }
    uploads.push_back(b64(dior::test::corrupt_jpeg()));
    const auto ask = [&](const std::string & image) {
        httplib::Client c("127.0.0.1", srv.port);
        c.set_read_timeout(120, 0);
        return c.Post("/api/embed", json({ { "conditions", { "car color" } }, { "image", image } }).dump(),
                      "application/json");
    };
    std::vector<std::vector<float>> together(uploads.size());
    std::vector<int>                status(uploads.size(), 0);
    for (int round = 0; round < 3 && read(srv.log).find("uploads embedded together") == std::string::npos; ++round) {
        std::vector<std::thread> ts;
        for (size_t i = 0; i < uploads.size(); ++i) {
            ts.emplace_back([&, i] {
                auto r    = ask(uploads[i]);
                status[i] = r ? r->status : -1;
                if (r && r->status == 200) {
                    together[i] = json::parse(r->body)["results"][0]["vector"].get<std::vector<float>>();
                }
            });
        }
        for (auto & t : ts) {
            t.join();
        }
    }
    EXPECT_NE(read(srv.log).find("uploads embedded together"), std::string::npos) << read(srv.log);
    EXPECT_EQ(status.back(), 400);
    for (size_t i = 0; i + 1 < uploads.size(); ++i) {
        ASSERT_EQ(status[i], 200) << i;
        auto                     r     = ask(uploads[i]);  // alone
        const std::vector<float> alone = json::parse(r->body)["results"][0]["vector"].get<std::vector<float>>();
        ASSERT_EQ(alone.size(), together[i].size());
        double d = 0, n = 0;
        for (size_t k = 0; k < alone.size(); ++k) {
            d += ((double)alone[k] - together[i][k]) * ((double)alone[k] - together[i][k]);
            n += (double)alone[k] * alone[k];
        }
        EXPECT_LE(std::sqrt(d / n), 1e-5) << i;
    }
    EXPECT_EQ(srv.stop(), 0);
}

// The model runs one job at a time; with a queue of one, a burst of uploads gets answers or a
// clear 503, never a hang or a crash; reads are answered meanwhile.
TEST_F(Serve, ABurstOfUploadsGetsAnswersOrBusyAndReadsGoOn) {
    server srv(s_, { "--queue", "1" }, "queue");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    std::vector<std::string> uploads;
    for (int i = 0; i < 6; ++i) {
        const fs::path p = dir_ / ("burst" + std::to_string(i) + ".bmp");
        dior::test::write_bmp(p.string(), 300, 300, dior::test::pattern_rgb(300, 300, 20 + i));
        uploads.push_back(b64(read(p)));
    }
    std::atomic<int>         ok{ 0 }, busy{ 0 }, other{ 0 };
    std::vector<std::thread> ts;
    for (int i = 0; i < 6; ++i) {
        ts.emplace_back([&, i] {
            httplib::Client c("127.0.0.1", srv.port);
            c.set_read_timeout(120, 0);
            auto r = c.Post("/api/search", json({ { "settings", { 1, 2 } }, { "image", uploads[i] } }).dump(),
                            "application/json");
            if (r && r->status == 200) {
                ++ok;
            } else if (r && r->status == 503 && json::parse(r->body)["error"].get<std::string>().find("busy") == 0) {
                ++busy;
            } else {
                ++other;
            }
        });
    }
    auto reader = srv.client();
    auto r      = reader.Get("/api/settings");
    EXPECT_EQ(r->status, 200);
    for (auto & t : ts) {
        t.join();
    }
    EXPECT_EQ(other.load(), 0);
    EXPECT_GE(ok.load(), 1);
    EXPECT_EQ(ok.load() + busy.load(), 6);
    std::fprintf(stderr, "[ serve ] burst of 6 uploads, queue 1: %d answered, %d busy\n", ok.load(), busy.load());
    EXPECT_EQ(srv.stop(), 0);
}

}  // namespace

// A text query under a CLIP setting: its CLIP text features against the stored image vectors, the
// neighbours `dior search --text` finds; mistakes are 400s that say what to do.
TEST(ServeText, TextQueriesAreAnsweredUnderClipSettings) {
    const fs::path dir = fs::temp_directory_path() / ("dior_serve_text_" + std::to_string(getpid()));
    fs::remove_all(dir);
    auto              s    = dior::test::make_sample_store(dir, 6, "-c 'texture type'");
    const std::string clip = std::string(DIOR_TEST_DATA_DIR) + "/hf-clip/gelu/f32.gguf";
    const auto        e = dior::test::run_shell(dior::test::dior_bin() + " embed --method clip --clip-model " + clip +
                                                " -t 2 " + s.images.string() + " -o " + s.db.string());
    ASSERT_EQ(e.status, 0) << e.output;
    int64_t clip_id = -1, dior_id = -1;
    for (const auto & st : dior::store::open(s.db.string(), true)->settings()) {
        (st.s.source == "clip" ? clip_id : dior_id) = st.id;
    }
    ASSERT_GE(clip_id, 0);
    ASSERT_GE(dior_id, 0);
    const std::string text = "a photo of a striped dress";
    const auto        cli  = dior::test::run_shell(dior::test::dior_bin() + " search --db " + s.db.string() +
                                                   " --json -k 3 --text '" + text + "'");
    ASSERT_EQ(cli.status, 0) << cli.output;
    const json want = json::parse(cli.output.substr(cli.output.find('{')));
    {
        server srv(s, {}, "text");
        ASSERT_GT(srv.port, 0) << read(srv.log);
        auto       c = srv.client();
        const auto r = c.Post("/api/search", json({ { "text", text }, { "settings", { clip_id } }, { "k", 3 } }).dump(),
                              "application/json");
        ASSERT_TRUE(r);
        ASSERT_EQ(r->status, 200) << r->body;
        const json got = body_of(r);
        EXPECT_EQ(got["text"], text);
        ASSERT_EQ(got["results"].size(), 1u);
        EXPECT_EQ(got["results"][0]["neighbors"], want["results"][0]["neighbors"]);
        EXPECT_EQ(got["results"][0]["setting"]["can_embed_text"], true);

        const auto bad = [&](const json & body, const std::string & says) {
            const auto b = c.Post("/api/search", body.dump(), "application/json");
            ASSERT_TRUE(b);
            EXPECT_EQ(b->status, 400) << b->body;
            EXPECT_NE(b->body.find(says), std::string::npos) << b->body;
        };
        bad({ { "text", text }, { "settings", { dior_id } } }, "takes no text query");
        bad({ { "text", 5 }, { "settings", { clip_id } } }, "non-empty string");
        bad({ { "text", "" }, { "settings", { clip_id } } }, "non-empty string");
        bad({ { "text", text }, { "path", s.paths[0] }, { "settings", { clip_id } } }, "one of them");
    }
    fs::remove_all(dir);
}

namespace {

// A client that sends its request a few bytes at a time: `head` first, then one `drip` every
// `every`, until the server closes the connection or `give_up` passes. closed_after: seconds from
// the start to the server's close (-1: never closed).
struct slow_client {
    double closed_after = -1;

    void run(int port, const std::string & head, const std::string & drip, std::chrono::milliseconds every,
             std::chrono::seconds give_up) {
        const int   fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family      = AF_INET;
        a.sin_port        = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (sockaddr *)&a, sizeof(a)) != 0) {
            close(fd);
            return;
        }
        const auto start = std::chrono::steady_clock::now();
        bool       ok    = send(fd, head.data(), head.size(), MSG_NOSIGNAL) == (ssize_t)head.size();
        while (ok && std::chrono::steady_clock::now() - start < give_up) {
            pollfd p{ fd, POLLIN, 0 };
            if (poll(&p, 1, (int)every.count()) > 0) {
                char buf[512];
                if (recv(fd, buf, sizeof(buf), 0) <= 0) {  // the server closed it (any answer first is fine)
                    break;
                }
                continue;
            }
            ok = send(fd, drip.data(), drip.size(), MSG_NOSIGNAL) == (ssize_t)drip.size();
        }
        if (std::chrono::steady_clock::now() - start < give_up) {
            closed_after = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }
        close(fd);
    }
};

}  // namespace

// Slow clients (slowloris): 16 connections that send a header line every half second, more than
// --http-threads, do not keep /api/health waiting, and each is cut at its deadline while it still
// sends (idle 5 s + --header-timeout); a body that trickles is cut once past the grace at
// --min-rate. Without deadlines they would hold their threads for as long as they go on (25 s here).
TEST_F(Serve, SlowClientsDelayNobodyAndAreCutAtTheirDeadline) {
    server srv(s_, { "--http-threads", "4", "--header-timeout", "2", "--min-rate", "4096" }, "slow");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    std::vector<slow_client> slow(17);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < 16; ++i) {
        threads.emplace_back([&, i] {
            slow[i].run(srv.port, "GET /api/settings HTTP/1.1\r\nHost: x\r\n", "X-Slow: 1\r\n",
                        std::chrono::milliseconds(500), std::chrono::seconds(25));
        });
    }
    threads.emplace_back([&] {  // headers complete, then a 100000-byte body at 2 bytes a second
        slow[16].run(srv.port,
                     "POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100000\r\n\r\n{",
                     " ", std::chrono::milliseconds(500), std::chrono::seconds(25));
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    double worst = 0;
    for (int i = 0; i < 5; ++i) {
        httplib::Client c("127.0.0.1", srv.port);
        c.set_connection_timeout(1, 0);
        c.set_read_timeout(1, 0);
        const auto t0 = std::chrono::steady_clock::now();
        const auto r  = c.Get("/api/health");
        worst         = std::max(worst, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        EXPECT_TRUE(r) << "no answer within a second while slow clients hold connections: "
                       << httplib::to_string(r.error());
        EXPECT_TRUE(r && r->status == 200);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    std::fprintf(stderr, "[ serve ] /api/health answered in %.3f s at worst beside 17 slow clients\n", worst);
    for (auto & t : threads) {
        t.join();
    }
    for (size_t i = 0; i < slow.size(); ++i) {
        EXPECT_GE(slow[i].closed_after, 0) << "slow client " << i << " was never cut";
        std::fprintf(stderr, "[ serve ] slow client %zu cut after %.1f s\n", i, slow[i].closed_after);
    }
    auto c = srv.client();
    EXPECT_EQ(c.Get("/api/settings")->status, 200);  // and the server goes on
    EXPECT_EQ(srv.stop(), 0);
}

// Memory comes back after large requests: 30 garbage uploads of 30 MB from 6 clients leave the
// server's RSS within 100 MB of what it was before them.
TEST_F(Serve, MemoryComesBackAfterLargeGarbageUploads) {
    server srv(s_, {}, "garbage");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    std::string  junk(30u << 20, '\0');
    std::mt19937 rng(3);
    for (char & ch : junk) {
        ch = (char)('A' + rng() % 26);
    }
    const std::string as_json = "{\"settings\": [1], \"image\": \"" + junk.substr(0, 29u << 20) + "\"}";
    // warm: the model that /api/embed loads (letters are base64: the upload reaches the model's
    // worker before it fails to decode), the indexes, a thread's first allocations
    auto c = srv.client();
    for (int i = 0; i < 2; ++i) {
        const auto r = c.Post("/api/embed", "{\"settings\": [1], \"image\": \"" + junk.substr(0, 1 << 20) + "\"}",
                              "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << r->body;
    }
    ASSERT_EQ(c.Get("/api/settings")->status, 200);
    const long               before = rss_kb(srv.pid);
    std::atomic<int>         bad{ 0 };
    std::vector<std::thread> clients;
    for (int t = 0; t < 6; ++t) {
        clients.emplace_back([&, t] {
            httplib::Client cl("127.0.0.1", srv.port);
            cl.set_read_timeout(120, 0);
            for (int i = 0; i < 5; ++i) {
                const auto r = (t + i) % 2 ? cl.Post("/api/search", junk, "application/json")
                                           : cl.Post("/api/embed", as_json, "application/json");
                bad += !r || (r->status != 400 && r->status != 503);  // refused, or busy
            }
        });
    }
    for (auto & t : clients) {
        t.join();
    }
    EXPECT_EQ(bad.load(), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const long after = rss_kb(srv.pid);
    std::fprintf(stderr, "[ serve ] RSS %ld kB before, %ld kB after 30 garbage uploads of 30 MB\n", before, after);
    EXPECT_LT(after - before, 100L * 1024);
    EXPECT_EQ(srv.stop(), 0);
}

// File names that are not UTF-8 (Latin-1, and bytes that start no sequence) through every route:
// JSON that carries them as \udcXX and takes them back, thumbnails by their bytes, errors that
// are JSON, never an empty reply.
TEST(ServeNames, NamesThatAreNotUtf8GoThroughEveryRoute) {
    dior::test::sample_store s;
    s.dir    = fs::temp_directory_path() / ("dior_serve_names_" + std::to_string(getpid()));
    s.images = s.dir / "images";
    s.db     = s.dir / "e.db";
    s.eval   = s.dir / "eval";
    fs::remove_all(s.dir);
    fs::create_directories(s.images);
    fs::create_directories(s.eval);
    const std::string latin1 = (s.images / "caf\xe9.bmp").string();
    const std::string broken = (s.images / "x\xed\xa0\x80\xff.bmp").string();
    const std::string plain  = (s.images / "plain.bmp").string();
    int               i      = 0;
    for (const auto & p : { latin1, broken, plain }) {
        dior::test::write_bmp(p, 40 + 4 * i, 32, dior::test::pattern_rgb(40 + 4 * i, 32, i));
        ++i;
    }
    const auto r = dior::test::run_shell(dior::test::dior_bin() + " embed " + dior::test::tiny_model_args() + " " +
                                         s.images.string() + " -c colour -o " + s.db.string());
    ASSERT_EQ(r.status, 0) << r.output;
    server srv(s, {}, "names");
    ASSERT_GT(srv.port, 0) << read(srv.log);
    auto c = srv.client();

    auto images = c.Get("/api/images?setting=1");
    ASSERT_TRUE(images);
    ASSERT_EQ(images->status, 200) << images->body;
    EXPECT_NE(images->body.find("caf\\udce9.bmp"), std::string::npos) << images->body;
    const json listed = dior::json_parse(images->body);
    EXPECT_EQ(listed.at("paths"), json({ latin1, plain, broken }));

    for (const auto & p : { latin1, broken }) {
        auto found = c.Post("/api/search", dior::json_text({ { "settings", { 1 } }, { "path", p }, { "k", 3 } }),
                            "application/json");
        ASSERT_TRUE(found);
        ASSERT_EQ(found->status, 200) << found->body;
        const json            out = dior::json_parse(found->body);
        std::set<std::string> paths;
        for (const auto & n : out.at("results").at(0).at("neighbors")) {
            paths.insert(n.at("path").get<std::string>());
        }
        std::set<std::string> others = { latin1, broken, plain };
        others.erase(p);  // the query is not its own neighbour
        EXPECT_EQ(paths, others);
        auto thumb = c.Get("/api/thumbnail?size=32&path=" + httplib::encode_uri_component(p));
        ASSERT_TRUE(thumb);
        EXPECT_EQ(thumb->status, 200);
        EXPECT_EQ(thumb->get_header_value("Content-Type"), "image/jpeg");
    }
    // unknown names, raw bytes: a JSON 404 naming them with \xNN, never an empty reply
    for (const std::string q : { "%ff", "%E9%00x", "caf%E9.bmp" }) {
        auto miss = c.Get("/api/thumbnail?path=" + q);
        ASSERT_TRUE(miss) << q;
        EXPECT_EQ(miss->status, 404) << q;
        EXPECT_NO_THROW(json::parse(miss->body)) << miss->body;
    }
    auto miss =
        c.Post("/api/search", dior::json_text({ { "settings", { 1 } }, { "path", "no\xe9" } }), "application/json");
    ASSERT_TRUE(miss);
    EXPECT_EQ(miss->status, 404);
    EXPECT_NE(json::parse(miss->body).at("error").get<std::string>().find("no\\xe9"), std::string::npos) << miss->body;
    EXPECT_EQ(srv.stop(), 0);
    fs::remove_all(s.dir);
}
