#include "dior.h"
#include "io/digest.h"

#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

dior::setting make_setting(const std::optional<std::string> & cond, int layer) {
    dior::setting s;
    s.dataset       = "cub200";
    s.model_id      = "Qwen/Qwen2.5-VL-7B-Instruct";
    s.model_sha256  = "aa";
    s.mmproj_sha256 = "bb";
    s.engine        = "test";
    s.prompt_type   = "describe";
    s.condition     = cond;
    s.prompt        = dior::instruction(dior::prompt_type::describe, cond);
    s.layer         = layer;
    s.n_embd        = 4;
    return s;
}

class Store : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = (fs::temp_directory_path() /
                 ("dior_store_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
                  std::to_string(getpid()) + ".db"))
                    .string();
        for (const char * ext : { "", "-wal", "-shm" }) {
            fs::remove(path_ + ext);
        }
    }

    void TearDown() override {
        for (const char * ext : { "", "-wal", "-shm" }) {
            fs::remove(path_ + ext);
        }
    }

    std::string path_;
};

TEST_F(Store, EqualSettingsShareAnIdAndAnyDifferenceMakesANewOne) {
    auto          st = dior::store::open(path_);
    const int64_t a  = st->add_setting(make_setting("bird species", -1));
    EXPECT_EQ(st->add_setting(make_setting("bird species", -1)), a);
    EXPECT_NE(st->add_setting(make_setting("bird species", 0)), a);
    EXPECT_NE(st->add_setting(make_setting(std::nullopt, -1)), a);
    auto other   = make_setting("bird species", -1);
    other.engine = "another build";
    EXPECT_NE(st->add_setting(other), a);
    EXPECT_EQ(st->settings().size(), 4u);
}

TEST_F(Store, VectorsRoundTripAndMissingTracksWhatIsStored) {
    const std::vector<float> v1 = { 1.0f, -0.0f, 3.5e-38f, 1e30f }, v2 = { 4, 5, 6, 7 };
    int64_t                  a = 0, b = 0;
    {
        auto st = dior::store::open(path_);
        a       = st->add_setting(make_setting("bird species", -1));
        b       = st->add_setting(make_setting(std::nullopt, -1));
        EXPECT_EQ(st->missing({ a, b }, "x/img1.png"), (std::vector<int64_t>{ a, b }));
        st->put_failure("x/img1.png", "cannot decode");
        EXPECT_EQ(st->failures().size(), 1u);
        st->put({ "x/img1.png", "h1", 10, 4, 3 }, { { a, v1 }, { b, v2 } });
        st->put({ "x/img0.png", "h0", 11, 5, 3 }, { { a, v2 } });
        EXPECT_TRUE(st->failures().empty());  // a success clears the failure
    }
    auto st = dior::store::open(path_);  // reopened: everything persisted
    EXPECT_TRUE(st->missing({ a, b }, "x/img1.png").empty());
    EXPECT_EQ(st->missing({ a, b }, "x/img0.png"), (std::vector<int64_t>{ b }));
    std::vector<std::string> paths;
    const dior::matrix       m = st->vectors(a, &paths);
    ASSERT_EQ(m.rows, 2u);
    EXPECT_EQ(m.cols, 4u);
    EXPECT_EQ(paths, (std::vector<std::string>{ "x/img0.png", "x/img1.png" }));  // ordered by path
    EXPECT_EQ(std::memcmp(m.data.data(), v2.data(), 16), 0);
    EXPECT_EQ(std::memcmp(m.data.data() + 4, v1.data(), 16), 0);
    EXPECT_EQ(st->images().size(), 2u);
    EXPECT_EQ(st->images()[1].width, 4);
}

TEST_F(Store, FileHashIsSha256OfTheContent) {
    const std::string f = (fs::temp_directory_path() / "dior_hash_me.bin").string();
    std::ofstream(f) << "abc";
    auto st = dior::store::open(path_);
    // SHA-256("abc"), FIPS 180-2 test vector.
    EXPECT_EQ(st->file_sha256(f), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(st->file_sha256(f), dior::sha256_hex("abc", 3));
    fs::remove(f);
}

// Every test runs in a process of its own (gtest_discover_tests), and the per-user hash cache is
// opened on first use: each test gets a cache file of its own, never the user's.
struct hash_cache_in_tmp : ::testing::Environment {
    void SetUp() override {
        const fs::path p = fs::temp_directory_path() / ("dior_hash_cache_" + std::to_string(getpid()) + ".db");
        setenv("DIOR_HASH_CACHE", p.c_str(), 1);
    }

    void TearDown() override {
        for (const char * ext : { "", "-wal", "-shm" }) {
            fs::remove(std::string(std::getenv("DIOR_HASH_CACHE")) + ext);
        }
    }
};

const auto * const g_hash_env = ::testing::AddGlobalTestEnvironment(new hash_cache_in_tmp);

// Large files hash in pieces; the result is that of the whole content.
TEST(FileHash, LargeFileEqualsTheHashOfItsBytes) {
    const std::string f = (fs::temp_directory_path() / ("dior_big_" + std::to_string(getpid()))).string();
    std::string       bytes((size_t)9 << 20, '\0');  // spans several 4 MiB reads
    for (size_t i = 0; i < bytes.size(); ++i) {
        bytes[i] = (char)(i * 2654435761u >> 13);
    }
    std::ofstream(f, std::ios::binary) << bytes;
    EXPECT_EQ(dior::sha256_file(f), dior::sha256_hex(bytes.data(), bytes.size()));
    EXPECT_EQ(dior::sha256_file(f), dior::sha256_hex(bytes.data(), bytes.size()));  // from the cache
    fs::remove(f);
    EXPECT_THROW(dior::sha256_file(f), dior::error);
}

// What cannot be mapped is read: an empty file, a pipe.
TEST(FileHash, EmptyFilesAndPipesAreReadToo) {
    const std::string empty = (fs::temp_directory_path() / ("dior_empty_" + std::to_string(getpid()))).string();
    std::ofstream(empty, std::ios::binary).flush();
    EXPECT_EQ(dior::sha256_file(empty), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    fs::remove(empty);

    const std::string fifo = (fs::temp_directory_path() / ("dior_fifo_" + std::to_string(getpid()))).string();
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    std::thread  writer([&] { std::ofstream(fifo, std::ios::binary) << "abc"; });
    dior::digest d("sha256");
    d.update_file_mapped(fifo);
    writer.join();
    EXPECT_EQ(d.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fs::remove(fifo);
}

// The cache is consulted (a row changed behind its back is what it answers), and keyed by path,
// size, modification and status-change times and inode: a file rewritten in place with its old
// size and modification time restored (cp -p, rsync -t --inplace) still misses, since setting the
// time back changes the status-change time, which no tool can set.
TEST(FileHash, CacheIsConsultedAndKeyedByTheFileState) {
    const std::string f = (fs::temp_directory_path() / ("dior_keyed_" + std::to_string(getpid()))).string();
    std::ofstream(f) << "first content";
    EXPECT_EQ(dior::sha256_file(f), dior::sha256_hex("first content", 13));
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(std::getenv("DIOR_HASH_CACHE"), &h), SQLITE_OK);
    const std::string fake(64, 'f');
    ASSERT_EQ(sqlite3_exec(h, ("UPDATE file_hashes SET sha256 = '" + fake + "'").c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_EQ(sqlite3_changes(h), 1);
    sqlite3_close(h);
    EXPECT_EQ(dior::sha256_file(f), fake);  // answered from the cache
    struct stat st {};
    ASSERT_EQ(stat(f.c_str(), &st), 0);
    {
        std::fstream w(f, std::ios::in | std::ios::out | std::ios::binary);
        w << "other content";  // same size, same inode
    }
    const struct timespec times[2] = { st.st_atim, st.st_mtim };
    ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
    EXPECT_EQ(dior::sha256_file(f), dior::sha256_hex("other content", 13));
    fs::remove(f);
}

// A cache file that is not SQLite (or cannot be written) is skipped: hashes stay right.
TEST(FileHash, UnusableCacheIsSkipped) {
    std::ofstream(std::getenv("DIOR_HASH_CACHE"))
        << "not an SQLite file, just text that is long enough to look like one";
    const std::string f = (fs::temp_directory_path() / ("dior_nocache_" + std::to_string(getpid()))).string();
    std::ofstream(f) << "abc";
    EXPECT_EQ(dior::sha256_file(f), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(dior::sha256_file(f), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fs::remove(f);
}

TEST_F(Store, UnwritablePlaceGivesAClearError) {
    const std::string file = (fs::temp_directory_path() / "dior_not_a_dir").string();
    std::ofstream(file) << "x";
    try {
        dior::store::open(file + "/sub/embeddings.db");
        FAIL() << "no error";
    } catch (const dior::store_error & e) {
        EXPECT_NE(std::string(e.what()).find("cannot open store " + file + "/sub/embeddings.db"), std::string::npos)
            << e.what();
    }
    fs::remove(file);
}

TEST(Naming, ReferenceDirectoryNames) {
    auto s = make_setting("bird species", -1);
    EXPECT_EQ(dior::reference_dir_name(s),
              "cub200-Qwen_Qwen2.5-VL-7B-Instruct-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last");
    s.dataset     = "movie_posters";
    s.condition   = "movie's production country";
    s.prompt_type = "describe_unconstraint";
    s.layer       = 20;
    s.token       = 5;
    EXPECT_EQ(dior::reference_dir_name(s),
              "movie_posters-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-movie's_production_country-num_layer=20-"
              "num_token=5-embedsrc=input_last");
    s.dataset   = "synthetic_cars";
    s.condition = std::nullopt;
    EXPECT_EQ(dior::reference_dir_name(s),
              "synthetic_cars-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-None-num_layer=20-num_token=5-"
              "embedsrc=input_last");
}

TEST(Naming, ParseInvertsTheName) {
    const auto p = dior::parse_reference_dir_name(
        "movie_posters-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-movie's_production_country-num_layer=-1-"
        "num_token=-1-embedsrc=input_last");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->dataset, "movie_posters");
    EXPECT_EQ(p->model_id, "Qwen_Qwen2.5-VL-7B-Instruct");
    EXPECT_EQ(p->prompt_type, "describe_unconstraint");
    EXPECT_EQ(p->condition, "movie's production country");
    EXPECT_EQ(p->layer, -1);
    EXPECT_EQ(p->source, "input_last");
    const auto n = dior::parse_reference_dir_name("cars196-m-express-None-num_layer=3-num_token=7-embedsrc=input_last");
    ASSERT_TRUE(n.has_value());
    EXPECT_FALSE(n->condition.has_value());
    EXPECT_EQ(n->token, 7);
    // The baselines' folders (SPEC 5 and 6)
    const auto c = dior::parse_reference_dir_name("cars196-openai_clip-vit-large-patch14-embedsrc=clip");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->source, "clip");
    EXPECT_EQ(c->dataset, "cars196");
    EXPECT_EQ(c->model_id, "openai_clip-vit-large-patch14");
    EXPECT_FALSE(c->condition.has_value());
    EXPECT_EQ(dior::reference_dir_name(*c), "cars196-openai_clip-vit-large-patch14-embedsrc=clip");
    const auto i =
        dior::parse_reference_dir_name("movie_posters-openai_clip-vit-large-patch14-indirect-genre-num_components=128");
    ASSERT_TRUE(i.has_value());
    EXPECT_EQ(i->source, "indirect");
    EXPECT_EQ(i->condition, "movie genre");
    EXPECT_EQ(i->components, 128);
    EXPECT_EQ(dior::reference_dir_name(*i),
              "movie_posters-openai_clip-vit-large-patch14-indirect-genre-num_components=128");
    EXPECT_FALSE(dior::parse_reference_dir_name("cars196-something-else").has_value());
}

TEST(Datasets, RegistryAndListingRules) {
    const dior::dataset_info * d = dior::find_dataset("deepfashion");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->aspects.size(), 5u);
    EXPECT_FALSE(d->aspects[0].has_value());
    EXPECT_EQ(dior::find_dataset("movie_posters")->aspects[2], "movie's production country");
    EXPECT_EQ(dior::find_dataset("nope"), nullptr);
    EXPECT_EQ(dior::datasets().size(), 5u);

    const fs::path dir = fs::temp_directory_path() / "dior_listing";
    fs::remove_all(dir);
    fs::create_directories(dir / "sub");
    for (const char * n : { "b.JPG", "a.png", "c.jpeg", "d.bmp", "e.gif", "f.txt", "g.webp", "sub/h.png" }) {
        std::ofstream(dir / n) << "x";
    }
    std::vector<std::string> names;
    for (const auto & p : dior::list_dataset_images(dir.string())) {
        names.push_back(fs::path(p).filename().string());
    }
    EXPECT_EQ(names, (std::vector<std::string>{ "a.png", "b.JPG", "c.jpeg", "d.bmp", "e.gif" }));
    fs::remove_all(dir);
    EXPECT_THROW(dior::list_dataset_images(dir.string()), dior::error);
}

}  // namespace

namespace {

// A store written by the first schema (no user_version, no images.mtime_ns, no
// settings.components) opens, migrates in place and keeps its vectors.
TEST(StoreSchema, FirstSchemaIsMigrated) {
    const std::string path = (fs::temp_directory_path() / ("dior_v1_" + std::to_string(getpid()) + ".db")).string();
    fs::remove(path);
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
    const char * v1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE settings(id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE, dataset TEXT NOT NULL, model_id TEXT NOT NULL,
  model_sha256 TEXT NOT NULL, mmproj_sha256 TEXT NOT NULL, engine TEXT NOT NULL, prompt_type TEXT NOT NULL, condition TEXT,
  prompt TEXT NOT NULL, layer INTEGER NOT NULL, token INTEGER NOT NULL, image_max_size INTEGER NOT NULL,
  positions TEXT NOT NULL, source TEXT NOT NULL, engine_options TEXT NOT NULL, n_embd INTEGER NOT NULL,
  model_path TEXT, mmproj_path TEXT, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE images(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT, bytes INTEGER, width INTEGER, height INTEGER);
CREATE TABLE vectors(setting_id INTEGER NOT NULL REFERENCES settings(id), image_id INTEGER NOT NULL REFERENCES images(id),
  vector BLOB NOT NULL, PRIMARY KEY(setting_id, image_id)) WITHOUT ROWID;
CREATE TABLE failures(path TEXT PRIMARY KEY, reason TEXT NOT NULL, time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE file_hashes(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO settings(id, identity, dataset, model_id, model_sha256, mmproj_sha256, engine, prompt_type, condition, prompt,
  layer, token, image_max_size, positions, source, engine_options, n_embd)
  VALUES (1, 'x', 'ds', 'm', 'a', 'b', 'e', 'describe', 'car color', 'p', -1, -1, 700, 'sequential', 'input_last', 'kv=f32 fa=0', 2);
INSERT INTO images VALUES (1, '/img/a.png', 'h', 10, 4, 4);
INSERT INTO vectors VALUES (1, 1, x'0000803f00000040');
)sql";
    ASSERT_EQ(sqlite3_exec(h, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
    sqlite3_close(h);
    {  // read-only first: read as it is
        auto ro = dior::store::open(path, true);
        ASSERT_EQ(ro->settings().size(), 1u);
        EXPECT_EQ(ro->settings()[0].s.components, 0);
        EXPECT_EQ(ro->vectors(1, nullptr).data, (std::vector<float>{ 1.0f, 2.0f }));
        EXPECT_EQ(ro->images()[0].mtime_ns, -1);
        EXPECT_EQ(ro->image("/img/a.png")->mtime_ns, -1);
    }
    {
        auto st = dior::store::open(path);
        ASSERT_EQ(st->settings().size(), 1u);
        EXPECT_EQ(st->settings()[0].s.components, 0);
        const auto m = st->vectors(1, nullptr);
        EXPECT_EQ(m.data, (std::vector<float>{ 1.0f, 2.0f }));
        EXPECT_EQ(st->image("/img/a.png")->mtime_ns, -1);  // unknown until it is embedded again
        EXPECT_EQ(st->check(), std::vector<std::string>{ "ok" });
    }
    ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
    sqlite3_stmt * q = nullptr;
    sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &q, nullptr);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(q, 0), 3);
    sqlite3_finalize(q);
    sqlite3_close(h);
    fs::remove(path);
}

// A second-schema store (user_version 2: no generation columns, no texts) migrates too: its
// settings keep their identity (a run resumes), and generated texts can be stored beside.
TEST(StoreSchema, SecondSchemaIsMigratedAndTakesTexts) {
    const std::string path = (fs::temp_directory_path() / ("dior_v2_" + std::to_string(getpid()) + ".db")).string();
    fs::remove(path);
    dior::setting s;
    s.dataset   = "ds";
    s.model_id  = "m";
    s.condition = "car color";
    s.n_embd    = 2;
    {  // written by this build, then taken back to the second schema
        auto st = dior::store::open(path);
        st->put({ "/img/a.png", "h", 10, 4, 4, 1 }, { { st->add_setting(s), { 1.0f, 2.0f } } });
    }
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
    const char * back = R"sql(
ALTER TABLE settings DROP COLUMN max_new_tokens; ALTER TABLE settings DROP COLUMN temperature;
ALTER TABLE settings DROP COLUMN gen_seed; ALTER TABLE settings DROP COLUMN repeat_penalty;
ALTER TABLE settings DROP COLUMN text_encoder; ALTER TABLE settings DROP COLUMN text_encoder_sha256;
ALTER TABLE settings DROP COLUMN text_mode; ALTER TABLE vectors DROP COLUMN text; PRAGMA user_version = 2;
)sql";
    ASSERT_EQ(sqlite3_exec(h, back, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(h);
    sqlite3_close(h);
    {  // read as it is (status, export, eval open stores read-only and never migrate them)
        auto                     ro = dior::store::open(path, true);
        std::vector<std::string> paths, texts;
        ASSERT_EQ(ro->settings().size(), 1u);
        EXPECT_EQ(ro->settings()[0].s.max_new_tokens, 0);
        EXPECT_EQ(ro->settings()[0].s.repeat_penalty, 1.0);
        EXPECT_EQ(ro->vectors(ro->settings()[0].id, &paths, &texts).data, (std::vector<float>{ 1.0f, 2.0f }));
        EXPECT_EQ(texts, std::vector<std::string>{ "" });
        EXPECT_EQ(ro->images().size(), 1u);
    }
    auto st = dior::store::open(path);
    ASSERT_EQ(st->settings().size(), 1u);
    EXPECT_EQ(st->add_setting(s), st->settings()[0].id);  // same identity: resumes
    std::vector<std::string> texts;
    st->vectors(st->settings()[0].id, nullptr, &texts);
    EXPECT_EQ(texts, std::vector<std::string>{ "" });
    dior::setting g  = s;
    g.source         = "generative";
    g.max_new_tokens = 16;
    g.text_encoder   = "sentence-transformers/sentence-t5-base";
    g.text_mode      = "whole";
    const int64_t id = st->add_setting(g);
    EXPECT_NE(id, st->settings()[0].id);
    dior::store::image_vectors row;
    row.image   = { "/img/a.png", "h", 10, 4, 4, 1 };
    row.vectors = { { id, { 3.0f } } };
    row.texts   = { { id, "a \"red\" car\n" } };
    st->put_all({ row });
    texts.clear();
    st->vectors(id, nullptr, &texts);
    EXPECT_EQ(texts, std::vector<std::string>{ "a \"red\" car\n" });
    const auto all = st->settings();
    EXPECT_EQ(all[1].s.max_new_tokens, 16);
    EXPECT_EQ(all[1].s.text_encoder, "sentence-transformers/sentence-t5-base");
    EXPECT_EQ(all[1].s.text_mode, "whole");
    EXPECT_EQ(all[1].s.repeat_penalty, 1.0);
    EXPECT_EQ(st->check(), std::vector<std::string>{ "ok" });
    st.reset();
    fs::remove(path);
}

}  // namespace
