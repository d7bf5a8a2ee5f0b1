// The library's run (run_embed) on the tiny model: its events, cancellation and resume, per-image
// failures, checks before any write, shards, and the fetch_model hook.
#include "../../tests/support/store_content.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <atomic>
#include <filesystem>
#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace {

struct RunTest : ::testing::Test {
    std::string dir, images;

    void SetUp() override {
        dir = (fs::temp_directory_path() / ("dior-run-test-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                  .string();
        fs::remove_all(dir);
        images = dir + "/images";
        fs::create_directories(images);
        dior::test::write_numbered_bmps(
            images, 5, [](int i) { return 40 + 8 * i; }, 36);
    }

    void TearDown() override { fs::remove_all(dir); }

    dior::run_options options(const std::string & store_name) const {
        dior::run_options o;
        o.inputs            = { images };
        o.conditions        = std::vector<std::optional<std::string>>{ std::nullopt, "car color" };
        o.model.model_path  = dior::test::tiny_dir() + "/text.gguf";
        o.model.mmproj_path = dior::test::tiny_dir() + "/mmproj.gguf";
        o.model.n_threads   = 2;
        o.store             = dir + "/" + store_name;
        return o;
    }
};

TEST_F(RunTest, ReportsEachImageAndFillsEverySetting) {
    std::vector<size_t> done_seen;
    size_t              started = 0;
    dior::run_events    ev;
    ev.start    = [&](size_t total) { started = total; };
    ev.progress = [&](size_t done, size_t total, size_t work, const std::string & path) {
        EXPECT_EQ(total, 5u);
        EXPECT_LE(work, done);
        EXPECT_EQ(fs::path(path).parent_path(), fs::absolute(images));
        done_seen.push_back(done);
    };
    const auto r = dior::run_embed(options("a.db"), ev);
    EXPECT_EQ(started, 5u);
    EXPECT_EQ(done_seen, (std::vector<size_t>{ 1, 2, 3, 4, 5 }));
    EXPECT_EQ(r.images, 5u);
    EXPECT_EQ(r.embedded, 5u);
    EXPECT_EQ(r.failed, 0u);
    EXPECT_FALSE(r.cancelled);
    ASSERT_EQ(r.settings.size(), 2u);  // 2 conditions x the last layer
    EXPECT_EQ(r.setting_ids.size(), 2u);
    EXPECT_EQ(r.n_conditions, 2u);
    EXPECT_GT(r.width, 0);
    const auto content = dior::test::read_store(dir + "/a.db");
    ASSERT_EQ(content.size(), 2u);
    for (const auto & [name, rows] : content) {
        EXPECT_EQ(rows.size(), 5u) << name;
    }
    // Again: nothing to do, everything skipped.
    const auto again = dior::run_embed(options("a.db"));
    EXPECT_EQ(again.skipped, 5u);
    EXPECT_EQ(again.embedded, 0u);
}

TEST_F(RunTest, CancelledRunResumesToTheSameStore) {
    const auto        whole = dior::run_embed(options("whole.db"));
    std::atomic<bool> cancel{ false };
    dior::run_events  ev;
    ev.cancel   = &cancel;
    ev.progress = [&](size_t done, size_t, size_t, const std::string &) {
        if (done == 2) {
            cancel = true;  // as a signal handler would
        }
    };
    const auto part = dior::run_embed(options("part.db"), ev);
    EXPECT_TRUE(part.cancelled);
    EXPECT_EQ(part.embedded, 2u);
    for (const auto & [name, rows] : dior::test::read_store(dir + "/part.db")) {
        EXPECT_EQ(rows.size(), 2u) << name;
    }
    const auto rest = dior::run_embed(options("part.db"));
    EXPECT_FALSE(rest.cancelled);
    EXPECT_EQ(rest.skipped, 2u);
    EXPECT_EQ(rest.embedded, 3u);
    EXPECT_EQ(dior::test::read_store(dir + "/part.db"), dior::test::read_store(dir + "/whole.db"));
    EXPECT_EQ(whole.embedded, 5u);
}

TEST_F(RunTest, ABadImageIsAFailureOfItsOwn) {
    dior::test::write_file(images + "/img02.bmp", "BM but nothing more");
    std::vector<std::string> lines;
    dior::run_events         ev;
    ev.message   = [&](const std::string & line) { lines.push_back(line); };
    const auto r = dior::run_embed(options("f.db"), ev);
    EXPECT_EQ(r.embedded, 4u);
    ASSERT_EQ(r.failures.size(), 1u);
    EXPECT_EQ(fs::path(r.failures[0].image).filename(), "img02.bmp");
    EXPECT_FALSE(r.failures[0].reason.empty());
    EXPECT_EQ(r.failures[0].reason.find(r.failures[0].image), std::string::npos);  // the path is not repeated
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("error: " + r.failures[0].image + ": ", 0), 0u) << lines[0];
}

TEST_F(RunTest, BadOptionsFailBeforeAnythingIsWritten) {
    auto o           = options("never.db");
    o.image_max_size = -1;
    EXPECT_THROW(dior::run_embed(o), dior::error);
    o        = options("never.db");
    o.method = "painting";
    EXPECT_THROW(dior::run_embed(o), dior::error);
    o                  = options("never.db");
    o.model.model_path = dir + "/missing.gguf";
    EXPECT_THROW(dior::run_embed(o), dior::error);
    o        = options("never.db");
    o.inputs = { dir + "/empty" };
    fs::create_directories(dir + "/empty");
    try {
        dior::run_embed(o);
        ADD_FAILURE() << "an empty folder ran";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("no images given"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir + "/never.db"));
}

TEST_F(RunTest, ShardsSplitTheListing) {
    auto o       = options("s0.db");
    o.shard      = "1/2";  // positions 1 and 3
    const auto r = dior::run_embed(o);
    EXPECT_EQ(r.listed, 5u);
    EXPECT_EQ(r.images, 2u);
    o.shard            = "7/9";
    o.store            = dir + "/none.db";
    const auto nothing = dior::run_embed(o);
    EXPECT_TRUE(nothing.no_images);
    EXPECT_FALSE(fs::exists(dir + "/none.db"));
}

TEST_F(RunTest, FetchModelFillsTheFilesBeforeTheyAreLoaded) {
    auto o                 = options("hf.db");
    o.model.model_path     = "";
    o.model.mmproj_path    = "";
    int              calls = 0;
    dior::run_events ev;
    ev.fetch_model = [&](dior::model_params & m) {
        ++calls;
        m.model_path  = dior::test::tiny_dir() + "/text.gguf";
        m.mmproj_path = dior::test::tiny_dir() + "/mmproj.gguf";
    };
    const auto r = dior::run_embed(o, ev);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(r.embedded, 5u);
    EXPECT_EQ(r.settings[0].model_path, fs::absolute(dior::test::tiny_dir() + "/text.gguf").string());
}

}  // namespace
