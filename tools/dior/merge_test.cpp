// dior embed --shard I/N and dior merge: three shards merged are one unsharded run, bit for bit;
// stores that disagree are refused and the output keeps what it had.
#include "../../tests/support/process.h"
#include "../../tests/support/store_content.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <sqlite3.h>

namespace fs = std::filesystem;

namespace {

constexpr int k_images = 11;  // not a multiple of 3: shards of 4, 4 and 3

using dior::test::read_store;
using dior::test::store_content;

void exec_sql(const fs::path & db, const std::string & sql) {
    sqlite3 * h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    char * err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(h);
}

class Shards : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dior_merge_test_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
        dior::test::write_numbered_bmps((dir_ / "images").string(), k_images, [](int i) { return 60 + 4 * i; }, 48);
        ASSERT_EQ(embed("", "whole.db").status, 0);
        for (int s = 0; s < 3; ++s) {
            const auto r = embed(std::to_string(s) + "/3", "shard" + std::to_string(s) + ".db");
            ASSERT_EQ(r.status, 0) << r.output;
        }
    }

    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static dior::test::run_result embed(const std::string & shard, const std::string & db) {
        const std::string t   = dior::test::tiny_dir();
        std::string       cmd = dior::test::dior_bin() + " embed -m " + t + "/text.gguf --mmproj " + t +
                          "/mmproj.gguf -t 2 " + (dir_ / "images").string() + " -c 'car color' --unconditional -o " +
                          (dir_ / db).string();
        if (!shard.empty()) {
            cmd += " --shard " + shard;
        }
        return dior::test::run_shell(cmd);
    }

    static dior::test::run_result dior(const std::string & args) {
        return dior::test::run_shell(dior::test::dior_bin() + " " + args);
    }

    static fs::path dir_;
};

fs::path Shards::dir_;

TEST_F(Shards, ThreeShardsCoverEveryImageOnce) {
    std::set<std::string> seen;
    size_t                total = 0;
    for (int s = 0; s < 3; ++s) {
        const store_content c = read_store((dir_ / ("shard" + std::to_string(s) + ".db")).string());
        ASSERT_EQ(c.size(), 2u);
        const auto & rows = c.begin()->second;
        EXPECT_EQ(rows.size(), s < 2 ? 4u : 3u) << "shard " << s;
        for (const auto & [path, v] : rows) {
            seen.insert(path);
        }
        total += rows.size();
    }
    EXPECT_EQ(total, (size_t)k_images);
    EXPECT_EQ(seen.size(), (size_t)k_images);
    // positions I, I+N, ...: shard 1 holds img01, img04, img07, img10
    const auto               rows = read_store((dir_ / "shard1.db").string()).begin()->second;
    std::vector<std::string> names;
    for (const auto & [path, v] : rows) {
        names.push_back(fs::path(path).filename().string());
    }
    EXPECT_EQ(names, (std::vector<std::string>{ "img01.bmp", "img04.bmp", "img07.bmp", "img10.bmp" }));
}

TEST_F(Shards, MergedShardsEqualTheUnshardedRun) {
    fs::remove(dir_ / "merged.db");
    const auto r = dior("merge " + (dir_ / "shard2.db").string() + " " + (dir_ / "shard0.db").string() + " " +
                        (dir_ / "shard1.db").string() + " -o " + (dir_ / "merged.db").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("2 settings, 22 vectors in all (22 new)"), std::string::npos) << r.output;
    EXPECT_EQ(read_store((dir_ / "merged.db").string()), read_store((dir_ / "whole.db").string()));

    // merging again adds nothing and conflicts with nothing: the vectors are the same bits
    const auto again = dior("merge " + (dir_ / "whole.db").string() + " -o " + (dir_ / "merged.db").string());
    ASSERT_EQ(again.status, 0) << again.output;
    EXPECT_NE(again.output.find("0 vectors new, 22 already here"), std::string::npos) << again.output;
    EXPECT_EQ(read_store((dir_ / "merged.db").string()), read_store((dir_ / "whole.db").string()));
    // and the merged store evaluates and exports as any other (its images are listed)
    EXPECT_EQ(dior::store::open((dir_ / "merged.db").string(), true)->images().size(), (size_t)k_images);
}

TEST_F(Shards, ConflictingStoresAreRefusedWholly) {
    fs::remove(dir_ / "out.db");
    ASSERT_EQ(dior("merge " + (dir_ / "shard0.db").string() + " -o " + (dir_ / "out.db").string()).status, 0);
    const store_content before = read_store((dir_ / "out.db").string());

    // the same image and setting with another vector
    fs::copy_file(dir_ / "whole.db", dir_ / "tampered.db", fs::copy_options::overwrite_existing);
    exec_sql(dir_ / "tampered.db",
             "UPDATE vectors SET vector = zeroblob(length(vector)) WHERE image_id = "
             "(SELECT id FROM images WHERE path LIKE '%img03.bmp')");
    auto r = dior("merge " + (dir_ / "tampered.db").string() + " -o " + (dir_ / "out.db").string());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("img03.bmp"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("another vector"), std::string::npos) << r.output;
    EXPECT_EQ(read_store((dir_ / "out.db").string()), before) << "nothing of the refused store is merged";

    // the same image path, another file
    fs::copy_file(dir_ / "whole.db", dir_ / "otherfile.db", fs::copy_options::overwrite_existing);
    exec_sql(dir_ / "otherfile.db",
             "UPDATE images SET sha256 = 'ab' || substr(sha256, 3) WHERE path LIKE '%img06.bmp'");
    r = dior("merge " + (dir_ / "otherfile.db").string() + " -o " + (dir_ / "out.db").string());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("img06.bmp"), std::string::npos) << r.output;
    EXPECT_EQ(read_store((dir_ / "out.db").string()), before);

    // the same settings computed from other model files
    fs::copy_file(dir_ / "shard1.db", dir_ / "othermodel.db", fs::copy_options::overwrite_existing);
    exec_sql(dir_ / "othermodel.db",
             "UPDATE settings SET model_sha256 = 'ff' || substr(model_sha256, 3), "
             "identity = identity || 'x'");
    r = dior("merge " + (dir_ / "othermodel.db").string() + " -o " + (dir_ / "out.db").string());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("other model files"), std::string::npos) << r.output;
    EXPECT_EQ(read_store((dir_ / "out.db").string()), before);

    // not stores, the output among the inputs
    EXPECT_NE(dior("merge " + (dir_ / "nothing.db").string() + " -o " + (dir_ / "out.db").string()).status, 0);
    EXPECT_NE(dior("merge " + (dir_ / "out.db").string() + " -o " + (dir_ / "out.db").string()).status, 0);
    EXPECT_EQ(read_store((dir_ / "out.db").string()), before);
}

TEST_F(Shards, BadShardSpecsAndEmptyShards) {
    for (const char * bad : { "3/3", "1/0", "-1/3", "1", "a/b", "1/3/5", "1/3x" }) {
        const auto r = embed(bad, "bad.db");
        EXPECT_NE(r.status, 0) << bad;
        EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
    }
    // more shards than images: the last ones have nothing to do, and say so without failing
    const auto r = embed("15/20", "empty.db");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("nothing to embed"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "empty.db"));
}

}  // namespace
