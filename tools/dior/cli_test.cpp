// End-to-end tests of the dior tool: runs the built binary (DIOR_BIN) on the tiny model.
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct run_result {
    int         status = -1;
    std::string output;  // stdout and stderr
};

run_result run(const std::string & args) {
    const std::string      cmd = dior::test::dior_bin() + " " + args + " 2>&1";
    run_result             r;
    FILE *                 p = popen(cmd.c_str(), "r");
    std::array<char, 4096> buf;
    while (p && fgets(buf.data(), (int)buf.size(), p)) {
        r.output += buf.data();
    }
    const int st = p ? pclose(p) : -1;
    r.status     = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string model_args() {
    const std::string dir = dior::test::tiny_dir();
    return "-m " + dir + "/text.gguf --mmproj " + dir + "/mmproj.gguf -t 2";
}

int count_lines_with(const std::string & text, const std::string & a, const std::string & b) {
    int               n = 0;
    std::stringstream ss(text);
    for (std::string line; std::getline(ss, line);) {
        n += line.find(a) != std::string::npos && line.find(b) != std::string::npos;
    }
    return n;
}

std::string read_bytes(const fs::path & p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class Cli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dior_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
        const int sizes[3][2] = { { 64, 48 }, { 90, 120 }, { 800, 500 } };  // the last is downscaled to 700
        for (int i = 0; i < 3; ++i) {
            dior::test::write_bmp((dir_ / "images" / ("img" + std::to_string(i) + ".bmp")).string(), sizes[i][0],
                                  sizes[i][1], dior::test::pattern_rgb(sizes[i][0], sizes[i][1], i));
        }
    }

    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;
};

TEST_F(Cli, EmbedWritesOneVectorPerImageConditionAndLayer) {
    const fs::path out = dir_ / "out";
    // Options before and after the folder: a repeatable option takes one value per use.
    const auto r = run("embed " + model_args() + " -c 'car color' --layer 0 " + (dir_ / "images").string() +
                       " --condition 'car model' -c 'background color' --unconditional --layer 2 --num_layer -1 -o " +
                       out.string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("embedded 3 of 3 images x 4 conditions x 3 layers (width 64)"), std::string::npos)
        << r.output;

    std::ifstream        mf(out / "manifest.json");
    const nlohmann::json m = nlohmann::json::parse(mf);
    ASSERT_EQ(m["images"].size(), 3u);
    EXPECT_EQ(m["images"][2]["width"], 700);  // 800x500 -> 700x437
    EXPECT_EQ(m["images"][2]["height"], 437);
    ASSERT_EQ(m["conditions"].size(), 4u);
    EXPECT_TRUE(m["conditions"][0]["condition"].is_null());
    EXPECT_EQ(m["conditions"][1]["instruction"], "Describe this image in one word regarding car color: \"");
    EXPECT_EQ(m["settings"]["layers"], nlohmann::json({ 0, 2, 4 }));
    EXPECT_EQ(m["settings"]["positions"], "sequential");
    ASSERT_EQ(m["files"].size(), 12u);
    for (const auto & f : m["files"]) {
        const dior::matrix mat = dior::read_npy((out / f["file"].get<std::string>()).string());
        EXPECT_EQ(mat.rows, 3u);
        EXPECT_EQ(mat.cols, 64u);
        for (float v : mat.data) {
            ASSERT_TRUE(std::isfinite(v));
        }
    }
    EXPECT_TRUE(fs::exists(out / "car_color.layer4.npy"));
    EXPECT_TRUE(fs::exists(out / "None.layer0.npy"));
}

TEST_F(Cli, BadFilesAreReportedOnceAndTheRestIsEmbedded) {
    dior::test::write_file((dir_ / "images" / "broken.jpg").string(), dior::test::corrupt_jpeg());
    dior::test::write_file((dir_ / "images" / "empty.png").string(), "");
    dior::test::write_file((dir_ / "images" / "notes.png").string(), "just some text\n");
    const fs::path out = dir_ / "out";
    const auto     r =
        run("embed " + model_args() + " " + (dir_ / "images").string() + " -c 'car color' -o " + out.string());
    EXPECT_EQ(r.status, 2) << r.output;  // partial
    for (const char * bad : { "broken.jpg", "empty.png", "notes.png" }) {
        EXPECT_EQ(count_lines_with(r.output, "error:", bad), 1) << bad << "\n" << r.output;
    }
    EXPECT_EQ(count_lines_with(r.output, "error:", ".bmp"), 0) << r.output;
    const dior::matrix mat = dior::read_npy((out / "car_color.layer4.npy").string());
    EXPECT_EQ(mat.rows, 3u);
    std::ifstream        mf(out / "manifest.json");
    const nlohmann::json m = nlohmann::json::parse(mf);
    EXPECT_EQ(m["failed"].size(), 3u);
    EXPECT_EQ(m["images"].size(), 3u);
}

TEST_F(Cli, MissingModelFailsFastAndWritesNothing) {
    const fs::path out = dir_ / "out";
    const auto     r   = run("embed -m " + (dir_ / "nope.gguf").string() + " --mmproj " +
                             (dir_ / "nope-mmproj.gguf").string() + " " + (dir_ / "images").string() + " -o " + out.string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("model file not found: " + (dir_ / "nope.gguf").string()), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out));
}

TEST_F(Cli, TwoIdenticalRunsGiveBitIdenticalVectors) {
    const std::string args =
        "embed " + model_args() + " " + (dir_ / "images").string() + " -c 'car color' --unconditional --layer all -o ";
    ASSERT_EQ(run(args + (dir_ / "a").string()).status, 0);
    ASSERT_EQ(run(args + (dir_ / "b").string()).status, 0);
    int n = 0;
    for (const auto & e : fs::directory_iterator(dir_ / "a")) {
        if (e.path().extension() == ".npy") {
            EXPECT_EQ(read_bytes(e.path()), read_bytes(dir_ / "b" / e.path().filename())) << e.path();
            ++n;
        }
    }
    EXPECT_EQ(n, 2 * 5);  // 2 conditions x hidden states 0..4
}

TEST_F(Cli, ListFileAndConditionsFileAndReferenceSpellings) {
    dior::test::write_file((dir_ / "list.txt").string(), "images/img1.bmp\n# a comment\nimages/img0.bmp\n");
    dior::test::write_file((dir_ / "conds.txt").string(), "car color\n\nmovie genre\n");
    const fs::path out = dir_ / "out";
    const auto     r = run("embed " + model_args() + " --list " + (dir_ / "list.txt").string() + " --conditions-file " +
                           (dir_ / "conds.txt").string() +
                           " --prompt_type express --num_token -1 --image_max_size 64 --use_cache -o " + out.string());
    ASSERT_EQ(r.status, 0) << r.output;
    std::ifstream        mf(out / "manifest.json");
    const nlohmann::json m = nlohmann::json::parse(mf);
    ASSERT_EQ(m["images"].size(), 2u);
    EXPECT_NE(m["images"][0]["path"].get<std::string>().find("img1.bmp"), std::string::npos);
    EXPECT_EQ(m["images"][0]["width"], 48);  // 90x120 -> 48x64
    EXPECT_EQ(m["conditions"][1]["instruction"], "Express this image in one word in terms of movie genre: \"");
    EXPECT_EQ(m["settings"]["prompt_type"], "express");
}

TEST_F(Cli, UnknownPromptTypeFallsBackToDescribeWithAWarning) {
    const auto r = run("embed " + model_args() + " " + (dir_ / "images" / "img0.bmp").string() +
                       " --prompt-type nonsense -o " + (dir_ / "out").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("warning: unknown prompt type 'nonsense'"), std::string::npos);
}

}  // namespace
