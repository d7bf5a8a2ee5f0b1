// Crash safety: a dior embed run killed with SIGKILL at any moment, then re-run, ends with exactly
// the store an uninterrupted run makes; Ctrl-C (SIGINT) finishes the current image and stops.
#include "../../tests/support/process.h"
#include "../../tests/support/store_content.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <sqlite3.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

constexpr int k_images = 10;

using dior::test::read_store;
using dior::test::store_content;

// Images with every vector stored, counted without disturbing the writer (read-only, WAL).
int stored_images(const std::string & path) {
    sqlite3 * db = nullptr;
    int       n  = -1;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt * st = nullptr;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM images", -1, &st, nullptr) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW) {
            n = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

class Resume : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // One folder per process: ctest -j runs the two tests of this suite at once.
        dir_ = fs::temp_directory_path() / ("dior_resume_test_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
        // ~0.2 s each on one thread: time to kill mid-image
        dior::test::write_numbered_bmps((dir_ / "images").string(), k_images, [](int) { return 560; }, 420);
        reference_ = new store_content(run_to_end("reference.db"));
        ASSERT_EQ(reference_->size(), 4u);  // 2 conditions x 2 layers
        for (const auto & [name, rows] : *reference_) {
            ASSERT_EQ(rows.size(), (size_t)k_images) << name;
        }
    }

    static void TearDownTestSuite() {
        delete reference_;
        fs::remove_all(dir_);
    }

    static std::vector<std::string> args(const std::string & db) {
        const std::string t = dior::test::tiny_dir();
        return { dior::test::dior_bin(),
                 "embed",
                 "-m",
                 t + "/text.gguf",
                 "--mmproj",
                 t + "/mmproj.gguf",
                 "-t",
                 "1",
                 (dir_ / "images").string(),
                 "-c",
                 "car color",
                 "--unconditional",
                 "--layer",
                 "0,-1",
                 "-o",
                 (dir_ / db).string() };
    }

    static store_content run_to_end(const std::string & db) {
        const pid_t pid = dior::test::spawn(args(db), (dir_ / (db + ".log")).string());
        EXPECT_GT(pid, 0);
        EXPECT_EQ(dior::test::wait_for(pid), 0);
        return read_store((dir_ / db).string());
    }

    // Starts a run and signals it once `after` images are stored. Returns the exit status and
    // how many images were stored when the signal was sent.
    static std::pair<int, int> run_and_signal(const std::string & db, int after, int sig) {
        const std::string path = (dir_ / db).string();
        const pid_t       pid  = dior::test::spawn(args(db), path + ".log");
        int               seen = 0;
        const auto        t0   = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
            if (fs::exists(path) && (seen = stored_images(path)) >= after) {
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        kill(pid, sig);
        return { dior::test::wait_for(pid), seen };
    }

    static fs::path        dir_;
    static store_content * reference_;
};

fs::path        Resume::dir_;
store_content * Resume::reference_ = nullptr;

TEST_F(Resume, SigkillAtSeveralPointsThenReRunGivesTheUninterruptedStore) {
    for (int after : { 1, 3, 7 }) {
        const std::string db      = "killed-" + std::to_string(after) + ".db";
        const auto [status, seen] = run_and_signal(db, after, SIGKILL);
        const int stored_at_kill  = stored_images((dir_ / db).string());
        std::printf("SIGKILL after %d images: %d stored when killed, %d after\n", after, seen, stored_at_kill);
        EXPECT_EQ(status, 128 + SIGKILL);
        EXPECT_LT(stored_at_kill, k_images) << "the run ended before it could be killed";
        // What survived the kill is whole: every stored image has all four vectors.
        for (const auto & [name, rows] : read_store((dir_ / db).string())) {
            EXPECT_EQ((int)rows.size(), stored_at_kill) << name;
        }
        EXPECT_EQ(run_to_end(db), *reference_) << "after SIGKILL at " << after;
    }
}

// Ctrl-C, and what containers / systemd (SIGTERM) and a closed terminal (SIGHUP) send: each
// finishes the current image, commits it, exits with 128 + signal, and the run resumes.
TEST_F(Resume, StopSignalsFinishTheCurrentImageAndTheRunResumes) {
    for (const auto & [sig, status, name] :
         { std::tuple{ SIGINT, 130, "Interrupt" }, std::tuple{ SIGTERM, 143, "Terminated" },
           std::tuple{ SIGHUP, 129, "Hangup" } }) {
        const std::string db   = "interrupted-" + std::to_string(sig) + ".db";
        const auto [got, seen] = run_and_signal(db, 2, sig);
        EXPECT_EQ(got, status) << name;
        std::ifstream     log(dir_ / (db + ".log"));
        const std::string out((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
        EXPECT_NE(out.find(std::string("interrupted (") + name), std::string::npos) << out;
        EXPECT_NE(out.find("Run the same command again to resume"), std::string::npos) << out;
        const int stored = stored_images((dir_ / db).string());
        EXPECT_GE(stored, seen);
        EXPECT_LT(stored, k_images);
        for (const auto & [setting, rows] : read_store((dir_ / db).string())) {
            EXPECT_EQ((int)rows.size(), stored) << setting;
        }
        EXPECT_EQ(run_to_end(db), *reference_) << name;
    }
}

}  // namespace
