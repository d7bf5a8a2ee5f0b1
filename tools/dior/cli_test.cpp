// End-to-end tests of the dior tool: runs the built binary on the tiny model.
#include "../../tests/support/process.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using dior::test::run_shell;

namespace {

dior::test::run_result run(const std::string & args) {
    return run_shell(dior::test::dior_bin() + " " + args);
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

nlohmann::json read_json(const fs::path & p) {
    std::ifstream f(p);
    return nlohmann::json::parse(f);
}

const char * k_suffix = "-num_token=-1-embedsrc=input_last";

// The generated texts stored with a setting's vectors, in row order.
std::vector<std::string> texts_of(const dior::store & st, int64_t setting) {
    std::vector<std::string> texts;
    st.vectors(setting, nullptr, &texts);
    return texts;
}

class Cli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dior_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
                std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
        const int sizes[3][2] = { { 64, 48 }, { 90, 120 }, { 800, 500 } };  // the last is downscaled to 700
        for (int i = 0; i < 3; ++i) {
            dior::test::write_bmp((dir_ / "images" / ("img" + std::to_string(i) + ".bmp")).string(), sizes[i][0],
                                  sizes[i][1], dior::test::pattern_rgb(sizes[i][0], sizes[i][1], i));
        }
    }

    void TearDown() override { fs::remove_all(dir_); }

    std::string db() const { return (dir_ / "e.db").string(); }

    // DIR/datasets/deepfashion with the first n images its metadata names (small generated BMPs
    // under the real file names, so that labels apply); returns DIR/datasets.
    fs::path deepfashion(int n, int width, int height, int step) const {
        const fs::path ds = dir_ / "datasets" / "deepfashion";
        fs::create_directories(ds);
        std::ifstream meta(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/deepfashion_metadata.csv");
        std::string   line;
        std::getline(meta, line);
        for (int i = 0; i < n && std::getline(meta, line); ++i) {
            const std::string file = line.substr(0, line.find(','));
            const int         w    = width + step * i;
            dior::test::write_bmp((ds / file).string(), w, height, dior::test::pattern_rgb(w, height, i));
        }
        return dir_ / "datasets";
    }

    fs::path dir_;
};

TEST_F(Cli, EmbedWritesOneVectorPerImageConditionAndLayer) {
    const fs::path out = dir_ / "npy";
    // Options before and after the folder: a repeatable option takes one value per use.
    const auto r = run("embed " + model_args() + " -c 'car color' --layer 0 " + (dir_ / "images").string() +
                       " --condition 'car model' -c 'background color' --unconditional --layer 2 --num_layer -1 -o " +
                       db() + " --npy " + out.string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("3 images: 3 embedded, 0 skipped (already stored), 0 failed; 4 conditions x 3 layers "
                            "(width 64)"),
              std::string::npos)
        << r.output;

    const nlohmann::json m = read_json(out / "manifest.json");
    ASSERT_EQ(m["images"].size(), 3u);
    EXPECT_EQ(m["images"][2]["width"], 700);  // 800x500 -> 700x437
    EXPECT_EQ(m["images"][2]["height"], 437);
    ASSERT_EQ(m["settings"].size(), 12u);
    int n_unconditional = 0;
    for (const auto & s : m["settings"]) {
        EXPECT_EQ(s["dataset"], "images");
        EXPECT_EQ(s["model_id"], "text");
        EXPECT_EQ(s["positions"], "sequential");
        n_unconditional += s["condition"].is_null();
        const dior::matrix mat = dior::read_npy((out / s["file"].get<std::string>()).string());
        EXPECT_EQ(mat.rows, 3u);
        EXPECT_EQ(mat.cols, 64u);
        for (float v : mat.data) {
            ASSERT_TRUE(std::isfinite(v));
        }
    }
    EXPECT_EQ(n_unconditional, 3);
    EXPECT_TRUE(fs::exists(out / (std::string("images-text-describe-car_color-num_layer=-1") + k_suffix + ".npy")));
    EXPECT_TRUE(fs::exists(out / (std::string("images-text-describe-None-num_layer=0") + k_suffix + ".npy")));
    EXPECT_EQ(read_bytes(out / (std::string("images-text-describe-None-num_layer=0") + k_suffix + ".rows.txt")),
              (dir_ / "images" / "img0.bmp").string() + "\n" + (dir_ / "images" / "img1.bmp").string() + "\n" +
                  (dir_ / "images" / "img2.bmp").string() + "\n");
}

TEST_F(Cli, BadFilesAreReportedOnceStoredWithReasonsAndRetried) {
    dior::test::write_file((dir_ / "images" / "broken.jpg").string(), dior::test::corrupt_jpeg());
    dior::test::write_file((dir_ / "images" / "empty.png").string(), "");
    dior::test::write_file((dir_ / "images" / "notes.png").string(), "just some text\n");
    const std::string args = "embed " + model_args() + " " + (dir_ / "images").string() + " -c 'car color' -o " + db();
    const auto        r    = run(args + " --npy " + (dir_ / "npy").string());
    EXPECT_EQ(r.status, 2) << r.output;  // partial
    for (const char * bad : { "broken.jpg", "empty.png", "notes.png" }) {
        EXPECT_EQ(count_lines_with(r.output, "error:", bad), 1) << bad << "\n" << r.output;
    }
    EXPECT_EQ(count_lines_with(r.output, "error:", ".bmp"), 0) << r.output;
    const dior::matrix mat = dior::read_npy(
        (dir_ / "npy" / (std::string("images-text-describe-car_color-num_layer=-1") + k_suffix + ".npy")).string());
    EXPECT_EQ(mat.rows, 3u);
    EXPECT_EQ(read_json(dir_ / "npy" / "manifest.json")["failed"].size(), 3u);

    auto status = run("status --db " + db());
    ASSERT_EQ(status.status, 0) << status.output;
    EXPECT_NE(status.output.find("3 failed images"), std::string::npos) << status.output;
    EXPECT_NE(status.output.find("empty.png: empty file"), std::string::npos) << status.output;
    EXPECT_NE(status.output.find("broken.jpg: cannot decode image"), std::string::npos) << status.output;

    // Fix one file and re-run: the failed ones are retried, the stored ones skipped.
    dior::test::write_bmp((dir_ / "images" / "notes.png").string(), 30, 30, dior::test::pattern_rgb(30, 30, 9));
    const auto again = run(args);
    EXPECT_EQ(again.status, 2) << again.output;
    EXPECT_NE(again.output.find("6 images: 1 embedded, 3 skipped (already stored), 2 failed"), std::string::npos)
        << again.output;
    status = run("status --db " + db());
    EXPECT_NE(status.output.find("2 failed images"), std::string::npos) << status.output;
    EXPECT_EQ(status.output.find("notes.png"), std::string::npos) << status.output;
}

TEST_F(Cli, MissingModelFailsFastAndWritesNothing) {
    const auto r = run("embed -m " + (dir_ / "nope.gguf").string() + " --mmproj " +
                       (dir_ / "nope-mmproj.gguf").string() + " " + (dir_ / "images").string() + " -o " + db());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("model file not found: " + (dir_ / "nope.gguf").string()), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(db()));
}

TEST_F(Cli, UnwritableStoreGivesAClearError) {
    dior::test::write_file((dir_ / "afile").string(), "x");
    const auto r =
        run("embed " + model_args() + " " + (dir_ / "images").string() + " -o " + (dir_ / "afile" / "e.db").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("cannot open store " + (dir_ / "afile" / "e.db").string()), std::string::npos) << r.output;
}

TEST_F(Cli, TwoIdenticalRunsGiveBitIdenticalVectors) {
    const std::string args =
        "embed " + model_args() + " " + (dir_ / "images").string() + " -c 'car color' --unconditional --layer all";
    ASSERT_EQ(run(args + " -o " + (dir_ / "a.db").string() + " --npy " + (dir_ / "a").string()).status, 0);
    ASSERT_EQ(run(args + " -o " + (dir_ / "b.db").string() + " --npy " + (dir_ / "b").string()).status, 0);
    int n = 0;
    for (const auto & e : fs::directory_iterator(dir_ / "a")) {
        if (e.path().extension() == ".npy") {
            EXPECT_EQ(read_bytes(e.path()), read_bytes(dir_ / "b" / e.path().filename())) << e.path();
            ++n;
        }
    }
    EXPECT_EQ(n, 2 * 5);  // 2 conditions x hidden states 0..4
}

// --image-batch 3 against one image at a time: the same vectors (to rounding), bad files still
// reported alone, and a resumed run whose images miss different settings.
TEST_F(Cli, ImageBatchGivesTheVectorsOfOneImageAtATime) {
    dior::test::write_file((dir_ / "images" / "broken.jpg").string(), dior::test::corrupt_jpeg());
    for (int i = 3; i < 6; ++i) {
        dior::test::write_bmp((dir_ / "images" / ("img" + std::to_string(i) + ".bmp")).string(), 40 + 30 * i, 60,
                              dior::test::pattern_rgb(40 + 30 * i, 60, i));
    }
    const std::string images = (dir_ / "images").string();
    const fs::path    later  = dir_ / "later.bmp";
    for (const char * batch : { "1", "3" }) {
        const std::string store = (dir_ / (std::string("b") + batch + ".db")).string();
        const std::string args  = "embed " + model_args() + " --image-batch " + batch + " -o " + store + " ";
        const auto        first = run(args + images + " -c 'car color' --layer all");
        EXPECT_EQ(first.status, 2) << first.output;  // broken.jpg
        EXPECT_EQ(count_lines_with(first.output, "error:", "broken.jpg"), 1) << first.output;
        EXPECT_NE(first.output.find("7 images: 6 embedded, 0 skipped (already stored), 1 failed"), std::string::npos)
            << first.output;
        // A second condition for the stored images, both for a new one.
        dior::test::write_bmp(later.string(), 77, 55, dior::test::pattern_rgb(77, 55, 11));
        const auto second = run(args + images + " " + later.string() + " -c 'car color' -c 'car model' --layer all" +
                                " --npy " + (dir_ / (std::string("npy") + batch)).string());
        EXPECT_EQ(second.status, 2) << second.output;
        EXPECT_NE(second.output.find("8 images: 7 embedded, 0 skipped (already stored), 1 failed"), std::string::npos)
            << second.output;
    }
    int    n     = 0;
    double worst = 0;
    for (const auto & e : fs::directory_iterator(dir_ / "npy1")) {
        if (e.path().extension() != ".npy") {
            continue;
        }
        const dior::matrix a = dior::read_npy(e.path().string());
        const dior::matrix b = dior::read_npy((dir_ / "npy3" / e.path().filename()).string());
        ASSERT_EQ(a.rows, 7u);
        ASSERT_EQ(b.rows, a.rows);
        for (size_t r = 0; r < a.rows; ++r) {
            double d = 0, nn = 0;
            for (size_t c = 0; c < a.cols; ++c) {
                const double x = a.data[r * a.cols + c], y = b.data[r * b.cols + c];
                d += (x - y) * (x - y);
                nn += x * x;
            }
            worst = std::max(worst, std::sqrt(d / nn));
        }
        ++n;
    }
    EXPECT_EQ(n, 2 * 5);
    EXPECT_LE(worst, 1e-5);
    std::printf("--image-batch 3 vs 1: largest relative L2 %.3g\n", worst);
    // An image the engine refuses inside a batch (aspect ratio over 200, as Qwen2-VL's processor):
    // it fails alone, the others of its batch are embedded.
    fs::create_directories(dir_ / "mix");
    for (const char * f : { "img0.bmp", "img3.bmp", "img4.bmp" }) {
        fs::copy_file(dir_ / "images" / f, dir_ / "mix" / f);
    }
    dior::test::write_bmp((dir_ / "mix" / "thin.bmp").string(), 402, 2, dior::test::pattern_rgb(402, 2, 3));
    const auto mix = run("embed " + model_args() + " --image-batch 4 -c 'car color' " + (dir_ / "mix").string() +
                         " -o " + (dir_ / "mix.db").string());
    EXPECT_EQ(mix.status, 2) << mix.output;
    EXPECT_EQ(count_lines_with(mix.output, "error:", "thin.bmp"), 1) << mix.output;
    EXPECT_NE(mix.output.find("aspect ratio over 200"), std::string::npos) << mix.output;
    EXPECT_NE(mix.output.find("4 images: 3 embedded, 0 skipped (already stored), 1 failed"), std::string::npos)
        << mix.output;
    EXPECT_EQ(run("embed " + model_args() + " --image-batch 0 " + images + " -o " + db()).status, 1);
    const auto bad = run("embed " + model_args() + " --image-batch many " + images + " -o " + db());
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.output.find("--image-batch many: use a count of images from 1 to 256, or auto"), std::string::npos)
        << bad.output;
    EXPECT_FALSE(fs::exists(db()));
}

TEST_F(Cli, ReRunSkipsWhatIsStoredAndNewSettingsAreAdded) {
    const std::string args = "embed " + model_args() + " " + (dir_ / "images").string() + " -o " + db();
    ASSERT_EQ(run(args + " -c 'car color'").status, 0);
    const auto again = run(args + " -c 'car color'");
    EXPECT_NE(again.output.find("3 images: 0 embedded, 3 skipped"), std::string::npos) << again.output;
    const auto more = run(args + " -c 'car color' -c 'car model'");  // one new setting: images are embedded again
    EXPECT_NE(more.output.find("3 images: 3 embedded, 0 skipped"), std::string::npos) << more.output;
    const auto status = run("status --db " + db());
    EXPECT_EQ(count_lines_with(status.output, "       3  images-text-describe-car_", "num_layer=-1"), 2)
        << status.output;
}

TEST_F(Cli, ListFileAndConditionsFileAndReferenceSpellings) {
    dior::test::write_file((dir_ / "list.txt").string(), "images/img1.bmp\n# a comment\nimages/img0.bmp\n");
    dior::test::write_file((dir_ / "conds.txt").string(), "car color\n\nmovie genre\n");
    const auto r = run("embed " + model_args() + " --list " + (dir_ / "list.txt").string() + " --conditions-file " +
                       (dir_ / "conds.txt").string() +
                       " --prompt_type express --num_token -1 --image_max_size 64 --use_cache --name mine -o " + db() +
                       " --npy " + (dir_ / "npy").string());
    ASSERT_EQ(r.status, 0) << r.output;
    const nlohmann::json m = read_json(dir_ / "npy" / "manifest.json");
    ASSERT_EQ(m["images"].size(), 2u);
    EXPECT_EQ(m["images"][1]["width"], 48);  // img1: 90x120 -> 48x64
    ASSERT_EQ(m["settings"].size(), 2u);
    EXPECT_EQ(m["settings"][1]["prompt"], "Express this image in one word in terms of movie genre: \"");
    EXPECT_EQ(m["settings"][1]["prompt_type"], "express");
    EXPECT_EQ(m["settings"][1]["image_max_size"], 64);
    EXPECT_EQ(m["settings"][1]["dataset"], "mine");
}

TEST_F(Cli, UnknownPromptTypeFallsBackToDescribeWithAWarning) {
    const auto r = run("embed " + model_args() + " " + (dir_ / "images" / "img0.bmp").string() +
                       " --prompt-type nonsense -o " + db());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("warning: unknown prompt type 'nonsense'"), std::string::npos);
}

// A dataset of the registry: a flat folder named like the real one, with files named like its
// files; every image is embedded with every aspect and the unconditional prompt.
TEST_F(Cli, DeepfashionDatasetEmbedsEveryImageForAllFivePrompts) {
    const fs::path ds = dir_ / "datasets" / "deepfashion";
    fs::create_directories(ds);
    const char * names[] = { "Floral_Print_Shirt_Dress-img_00000065.jpg",
                             "Butterfly_Sleeve_Sheath_Dress-img_00000034.jpg", "Classic_Denim_Jacket-img_00000012.jpg",
                             "Striped_Linen_Shorts-img_00000101.jpg" };
    int          seed    = 0;
    for (const char * n : names) {
        dior::test::write_bmp((ds / n).string(), 40, 60, dior::test::pattern_rgb(40, 60, seed++));  // BMP bytes
    }
    dior::test::write_file((ds / "README.txt").string(), "not an image, not listed");
    const auto r =
        run("embed " + model_args() + " --dataset deepfashion --datasets-dir " + (dir_ / "datasets").string() +
            " --model-id Qwen/Qwen2.5-VL-7B-Instruct -o " + db() + " --npy " + (dir_ / "npy").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("4 images: 4 embedded, 0 skipped (already stored), 0 failed; 5 conditions x 1 layers"),
              std::string::npos)
        << r.output;
    const nlohmann::json m = read_json(dir_ / "npy" / "manifest.json");
    ASSERT_EQ(m["settings"].size(), 5u);
    std::vector<std::string> files;
    for (const auto & s : m["settings"]) {
        EXPECT_EQ(s["shape"][0], 4);
        files.push_back(s["file"]);
    }
    const std::string p = "deepfashion-Qwen_Qwen2.5-VL-7B-Instruct-describe-";
    EXPECT_EQ(files, (std::vector<std::string>{ p + "None-num_layer=-1" + k_suffix + ".npy",
                                                p + "clothing_category-num_layer=-1" + k_suffix + ".npy",
                                                p + "texture_type-num_layer=-1" + k_suffix + ".npy",
                                                p + "fabric_type-num_layer=-1" + k_suffix + ".npy",
                                                p + "fit_type-num_layer=-1" + k_suffix + ".npy" }));
}

TEST_F(Cli, ExportThenImportRoundTripsEveryFloatBitExactly) {
    ASSERT_EQ(run("embed " + model_args() + " " + (dir_ / "images").string() +
                  " -c 'car color' --unconditional --layer 0,-1 -o " + db())
                  .status,
              0);
    const fs::path json_dir = dir_ / "json";
    ASSERT_EQ(run("export --db " + db() + " --json " + json_dir.string() + " --npy " + (dir_ / "npy1").string()).status,
              0);
    // The reference's layout: one folder per setting, one <image stem>.json per image.
    const fs::path one = json_dir / (std::string("images-text-describe-car_color-num_layer=-1") + k_suffix);
    ASSERT_TRUE(fs::is_directory(one));
    const nlohmann::json j = read_json(one / "img1.json");
    EXPECT_EQ(j["embedding"].size(), 64u);
    EXPECT_EQ(j["prompt"], "Describe this image in one word regarding car color: \"");
    EXPECT_EQ(j["source"], "input_last");

    const std::string db2 = (dir_ / "imported.db").string();
    const auto        imp = run("import " + json_dir.string() + " --db " + db2);
    ASSERT_EQ(imp.status, 0) << imp.output;
    EXPECT_NE(imp.output.find("imported 4 settings, 12 vectors"), std::string::npos) << imp.output;
    ASSERT_EQ(run("export --db " + db2 + " --npy " + (dir_ / "npy2").string()).status, 0);
    int n = 0;
    for (const auto & e : fs::directory_iterator(dir_ / "npy1")) {
        if (e.path().extension() == ".npy") {
            EXPECT_EQ(read_bytes(e.path()), read_bytes(dir_ / "npy2" / e.path().filename())) << e.path();
            ++n;
        }
    }
    EXPECT_EQ(n, 4);
}

TEST_F(Cli, NpyFilesLoadWithNumpy) {
    ASSERT_EQ(run("embed " + model_args() + " " + (dir_ / "images").string() + " --layer 0,-1 -o " + db() + " --npy " +
                  (dir_ / "npy").string())
                  .status,
              0);
    const std::string f =
        (dir_ / "npy" / (std::string("images-text-describe-None-num_layer=-1") + k_suffix + ".npy")).string();
    const auto r = run_shell(dior::test::python() + " -c \"import numpy as np; a = np.load('" + f +
                             "'); print(a.shape, a.dtype, bool(np.isfinite(a).all()))\"");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, "(3, 64) float32 True\n");
}

TEST_F(Cli, ProgressIsABarOnATerminalAndLinesWhenPiped) {
    const std::string cmd =
        dior::test::dior_bin() + " embed " + model_args() + " " + (dir_ / "images").string() + " -o " + db();
    const auto piped = run_shell(cmd);
    EXPECT_NE(piped.output.find("progress: 3/3 images"), std::string::npos) << piped.output;
    EXPECT_EQ(piped.output.find('\r'), std::string::npos);
    fs::remove(db());
    const auto tty = run_shell("script -qfec \"" + cmd + "\" /dev/null < /dev/null");  // a pseudo-terminal
    EXPECT_NE(tty.output.find("\r\033[K["), std::string::npos) << tty.output;
    EXPECT_NE(tty.output.find("3/3"), std::string::npos) << tty.output;
    EXPECT_NE(tty.output.find("3 images: 3 embedded"), std::string::npos) << tty.output;
}

// dior eval on a store and on the reference's JSON layout of the same vectors: the same table,
// one JSON per setting, the same summary.csv.
TEST_F(Cli, EvalScoresAStoreAndAReferenceJsonTreeAlike) {
    const fs::path ds = dir_ / "datasets" / "deepfashion";
    fs::create_directories(ds);
    std::ifstream meta(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/deepfashion_metadata.csv");
    std::string   line;
    std::getline(meta, line);  // header
    for (int i = 0; i < 8 && std::getline(meta, line); ++i) {
        const std::string file = line.substr(0, line.find(','));
        dior::test::write_bmp((ds / file).string(), 40, 56, dior::test::pattern_rgb(40, 56, i));
    }
    ASSERT_EQ(run("embed " + model_args() + " --dataset deepfashion --datasets-dir " + (dir_ / "datasets").string() +
                  " -o " + db())
                  .status,
              0);
    const auto r = run("eval --db " + db() + " -o " + (dir_ / "res1").string());
    ASSERT_EQ(r.status, 0) << r.output;
    // The aspect named in the setting comes first, marked; the others follow.
    const size_t at =
        r.output.find("deepfashion-text-describe-fit_type-num_layer=-1-num_token=-1-embedsrc=input_last\n");
    ASSERT_NE(at, std::string::npos) << r.output;
    std::stringstream table(r.output.substr(at));
    std::string       title, header, first, second;
    std::getline(table, title);
    std::getline(table, header);
    std::getline(table, first);
    std::getline(table, second);
    EXPECT_NE(header.find("map_r  prec_1"), std::string::npos) << header;
    EXPECT_EQ(first.rfind("  fit type *", 0), 0u) << first;
    EXPECT_EQ(second.rfind("  clothing category ", 0), 0u) << second;
    EXPECT_NE(r.output.find("evaluated 5 settings"), std::string::npos) << r.output;
    const nlohmann::json j = read_json(
        dir_ / "res1" / "deepfashion-text-describe-fit_type-num_layer=-1-num_token=-1-embedsrc=input_last.json");
    EXPECT_EQ(j["aspect"], "fit type");
    EXPECT_EQ(j["results"].size(), 4u);
    EXPECT_EQ(j["results"]["clothing category"]["images"], 8);
    const double map_r = j["results"]["fit type"]["map_r"].get<double>();
    EXPECT_GE(map_r, 0.0);
    EXPECT_LE(map_r, 100.0);
    const std::string csv1 = read_bytes(dir_ / "res1" / "summary.csv");
    EXPECT_EQ(std::count(csv1.begin(), csv1.end(), '\n'), 1 + 5 * 4);

    ASSERT_EQ(run("export --db " + db() + " --json " + (dir_ / "json").string()).status, 0);
    const auto r2 = run("eval --embedding-dir " + (dir_ / "json").string() + " -o " + (dir_ / "res2").string());
    ASSERT_EQ(r2.status, 0) << r2.output;
    EXPECT_EQ(read_bytes(dir_ / "res2" / "summary.csv"), csv1);
}

// A store that cannot grow (here: a file size limit, as a full disk would do) stops the run with
// an error naming it; what was committed stays readable, and the run resumes once space is back.
TEST_F(Cli, StoreThatCannotGrowStopsTheRunAndKeepsWhatWasCommitted) {
    for (int i = 3; i < 12; ++i) {
        dior::test::write_bmp((dir_ / "images" / ("more" + std::to_string(i) + ".bmp")).string(), 60, 60,
                              dior::test::pattern_rgb(60, 60, i));
    }
    const std::string cmd = dior::test::dior_bin() + " embed " + model_args() + " " + (dir_ / "images").string() +
                            " -c 'car color' --layer all -o " + db();
    // bash: ignore SIGXFSZ so that writes past the limit fail with EFBIG instead of killing.
    const auto full = run_shell("bash -c \"trap '' XFSZ; ulimit -f 250; " + cmd + "\"");
    EXPECT_EQ(full.status, 1) << full.output;
    EXPECT_NE(full.output.find("error: store " + db()), std::string::npos) << full.output;
    EXPECT_NE(full.output.find("run the same command again to resume"), std::string::npos) << full.output;
    const auto status = run("status --db " + db());
    ASSERT_EQ(status.status, 0) << status.output;
    const int stored = std::stoi(status.output.substr(status.output.find(": ") + 2));
    std::printf("stored before the store could not grow: %d of 12 images\n", stored);
    EXPECT_GT(stored, 0);
    EXPECT_LT(stored, 12);
    const auto again = run_shell(cmd);
    EXPECT_EQ(again.status, 0) << again.output;
    EXPECT_NE(again.output.find("12 images: " + std::to_string(12 - stored) + " embedded, " + std::to_string(stored) +
                                " skipped"),
              std::string::npos)
        << again.output;
}

// --image-processor: the reference's (fast, the default), Hugging Face's slow one, or mtmd's own
// resize; each is a setting of its own, recorded in its engine options.
TEST_F(Cli, ImageProcessorsAreSeparateSettingsWithOtherVectors) {
    const std::string args = "embed " + model_args() + " " + (dir_ / "images").string() + " -o " + db();
    ASSERT_EQ(run(args + " --npy " + (dir_ / "fast").string()).status, 0);
    ASSERT_EQ(run(args + " --image-processor slow --npy " + (dir_ / "slow").string()).status, 0);
    ASSERT_EQ(run(args + " --mtmd-image-resize --npy " + (dir_ / "mtmd").string()).status, 0);
    const nlohmann::json fa = read_json(dir_ / "fast" / "manifest.json"),
                         sl = read_json(dir_ / "slow" / "manifest.json"),
                         mt = read_json(dir_ / "mtmd" / "manifest.json");
    EXPECT_EQ(fa["settings"][0]["engine_options"], "kv=f32 fa=0 vfa=1 processor=fast");
    EXPECT_EQ(sl["settings"][0]["engine_options"], "kv=f32 fa=0 vfa=1");  // no word of its own, as before fast
    EXPECT_EQ(mt["settings"][0]["engine_options"], "kv=f32 fa=0 vfa=1 resize=mtmd");
    const auto load = [&](const char * sub, const nlohmann::json & m) {
        return dior::read_npy((dir_ / sub / m["settings"][0]["file"].get<std::string>()).string());
    };
    const dior::matrix a = load("fast", fa), b = load("slow", sl), c = load("mtmd", mt);
    ASSERT_EQ(a.data.size(), b.data.size());
    ASSERT_EQ(a.data.size(), c.data.size());
    EXPECT_NE(b.data, c.data);  // 64x48 and 90x120 are not multiples of 28: the resizes differ
    EXPECT_NE(a.data, b.data);
    const auto bad = run(args + " --image-processor pillow");
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.output.find("--image-processor pillow: use fast, slow or mtmd"), std::string::npos) << bad.output;
}

// --strict: the F32 path everywhere (the vision encoder without flash attention), recorded without
// "vfa" as every setting written before the vision encoder had it; other vectors than the default.
TEST_F(Cli, StrictIsTheF32PathAndASettingOfItsOwn) {
    const std::string args = "embed " + model_args() + " " + (dir_ / "images").string() + " -o " + db();
    ASSERT_EQ(run(args + " --npy " + (dir_ / "default").string()).status, 0);
    ASSERT_EQ(run(args + " --strict --npy " + (dir_ / "strict").string()).status, 0);
    ASSERT_EQ(run(args + " --no-vision-flash-attn --npy " + (dir_ / "novfa").string()).status, 0);
    const nlohmann::json d = read_json(dir_ / "default" / "manifest.json"),
                         s = read_json(dir_ / "strict" / "manifest.json"),
                         n = read_json(dir_ / "novfa" / "manifest.json");
    EXPECT_EQ(d["settings"][0]["engine_options"], "kv=f32 fa=0 vfa=1 processor=fast");
    EXPECT_EQ(s["settings"][0]["engine_options"], "kv=f32 fa=0 processor=fast");
    EXPECT_EQ(n["settings"][0]["engine_options"], "kv=f32 fa=0 processor=fast");
    const dior::matrix a = dior::read_npy((dir_ / "default" / d["settings"][0]["file"].get<std::string>()).string());
    const dior::matrix b = dior::read_npy((dir_ / "strict" / s["settings"][0]["file"].get<std::string>()).string());
    const dior::matrix c = dior::read_npy((dir_ / "novfa" / n["settings"][0]["file"].get<std::string>()).string());
    ASSERT_EQ(a.data.size(), b.data.size());
    EXPECT_NE(a.data, b.data);
    EXPECT_EQ(b.data, c.data);
    const auto both = run(args + " --strict --kv-f16");
    EXPECT_EQ(both.status, 1);
    EXPECT_NE(both.output.find("--strict computes everything in F32"), std::string::npos) << both.output;
}

// --parse-special: a condition's special-token text becomes control tokens, as in the reference's
// processor; by default it stays text. Either way a setting of its own.
TEST_F(Cli, ParseSpecialIsASettingOfItsOwn) {
    const std::string args =
        "embed " + model_args() + " " + (dir_ / "images").string() + " -o " + db() + " -c 'car<|im_end|>color'";
    ASSERT_EQ(run(args + " --npy " + (dir_ / "text").string()).status, 0);
    ASSERT_EQ(run(args + " --parse-special --npy " + (dir_ / "parsed").string()).status, 0);
    const nlohmann::json t = read_json(dir_ / "text" / "manifest.json"),
                         p = read_json(dir_ / "parsed" / "manifest.json");
    EXPECT_EQ(p["settings"][0]["engine_options"], "kv=f32 fa=0 vfa=1 processor=fast special=parse");
    const dior::matrix a = dior::read_npy((dir_ / "text" / t["settings"][0]["file"].get<std::string>()).string());
    const dior::matrix b = dior::read_npy((dir_ / "parsed" / p["settings"][0]["file"].get<std::string>()).string());
    ASSERT_EQ(a.data.size(), b.data.size());
    EXPECT_NE(a.data, b.data);
}

// All 4000 deepfashion names, the 8 with dots in them included, are labelled and scored from the
// reference's JSON layout; a file the metadata does not know is reported, not dropped silently.
TEST_F(Cli, EvalLabelsEveryDeepfashionNameAndReportsUnlabeledImages) {
    const fs::path set =
        dir_ / "tree" / "deepfashion-some_model-describe-fit_type-num_layer=-1-num_token=-1-embedsrc=input_last";
    fs::create_directories(set);
    std::ifstream meta(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/deepfashion_metadata.csv");
    std::string   line;
    std::getline(meta, line);
    int n = 0;
    while (std::getline(meta, line)) {
        std::string name = line[0] == '"' ? line.substr(1, line.find('"', 1) - 1) : line.substr(0, line.find(','));
        name             = name.substr(0, name.size() - 4) + ".json";
        std::ofstream(set / name) << "{\"embedding\": [" << (n % 7) << ", " << (n % 3) << ", 1.5], \"prompt\": \"p\"}";
        ++n;
    }
    ASSERT_EQ(n, 4000);
    std::ofstream(set / "Not.In.The.Metadata-img_1.json") << "{\"embedding\": [1, 2, 3]}";
    const auto r =
        run("eval --no-clustering --embedding-dir " + (dir_ / "tree").string() + " -o " + (dir_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(count_lines_with(r.output, " 4000 ", "."), 4) << r.output;  // every aspect scores 4000 images
    EXPECT_EQ(count_lines_with(r.output, "1 images without a label", "left out"), 4) << r.output;
    const nlohmann::json j = read_json(dir_ / "res" / (set.filename().string() + ".json"));
    for (const auto & [aspect, res] : j["results"].items()) {
        EXPECT_EQ(res["images"], 4000) << aspect;
        EXPECT_EQ(res["unlabeled"], nlohmann::json::array({ "Not.In.The.Metadata-img_1.json" })) << aspect;
    }
}

}  // namespace

namespace {

// The CLIP and InDiReCT baselines in the same pipeline: dior embed --method clip / indirect on a
// dataset folder with a tiny CLIP converted by tools/convert-clip (tests/oracle/hf_clip.py), then
// dior eval scores them and export names them as the reference does.
TEST_F(Cli, ClipAndIndirectBaselinesRunStoreExportAndEvaluate) {
    deepfashion(10, 48, 40, 1);
    const std::string clip = std::string(DIOR_TEST_DATA_DIR) + "/hf-clip/quick/f32.gguf";
    const std::string args = "embed --dataset deepfashion --datasets-dir " + (dir_ / "datasets").string() +
                             " --clip-model " + clip + " -t 2 -o " + db();
    auto r = run(args + " --method clip");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(
        r.output.find("10 images: 10 embedded, 0 skipped (already stored), 0 failed; 1 settings (clip) (width 16)"),
        std::string::npos)
        << r.output;
    r = run(args + " --method indirect --components 8");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("4 settings (indirect) (width 8)"), std::string::npos) << r.output;
    r = run(args + " --method indirect --components 8");  // resumes: nothing to do
    EXPECT_NE(r.output.find("10 images: 0 embedded, 10 skipped"), std::string::npos) << r.output;

    ASSERT_EQ(run("export --db " + db() + " --json " + (dir_ / "json").string()).status, 0);
    const fs::path clip_dir = dir_ / "json" / "deepfashion-tiny_clip-quick-embedsrc=clip";
    const fs::path fit_dir  = dir_ / "json" / "deepfashion-tiny_clip-quick-indirect-fit-num_components=8";
    ASSERT_TRUE(fs::is_directory(clip_dir));
    ASSERT_TRUE(fs::is_directory(fit_dir));
    const nlohmann::json c = read_json(clip_dir / "Floral_Print_Shirt_Dress-img_00000065.json");
    EXPECT_EQ(c["source"], "clip");
    EXPECT_EQ(c["embedding"].size(), 16u);
    const nlohmann::json f = read_json(fit_dir / "Floral_Print_Shirt_Dress-img_00000065.json");
    EXPECT_EQ(f["source"], "indirect");
    EXPECT_EQ(f["aspect"], "fit");
    EXPECT_EQ(f["num_components"], 8);
    EXPECT_EQ(f["clip_model"], "tiny/clip-quick");
    double n = 0;
    for (const auto & v : f["embedding"]) {
        n += v.get<double>() * v.get<double>();
    }
    EXPECT_NEAR(n, 1.0, 1e-5);  // InDiReCT vectors are normalised; CLIP's are not

    r = run("eval --db " + db() + " -o " + (dir_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("evaluated 5 settings"), std::string::npos) << r.output;
    const nlohmann::json e =
        read_json(dir_ / "res" / "deepfashion-tiny_clip-quick-indirect-texture-num_components=8.json");
    EXPECT_EQ(e["aspect"], "texture type");
    EXPECT_EQ(e["results"].size(), 4u);
    EXPECT_EQ(e["results"]["texture type"]["images"], 10);
    // The reference's JSON tree of the same vectors scores the same (its names spell the model id
    // with "_" for "/").
    ASSERT_EQ(run("eval --embedding-dir " + (dir_ / "json").string() + " -o " + (dir_ / "res2").string()).status, 0);
    std::string csv = read_bytes(dir_ / "res" / "summary.csv");
    for (size_t at = csv.find("tiny/clip"); at != std::string::npos; at = csv.find("tiny/clip", at)) {
        csv[at + 4] = '_';
    }
    EXPECT_EQ(read_bytes(dir_ / "res2" / "summary.csv"), csv);

    // Texts for an ad-hoc folder: a file in the reference's layout.
    dior::test::write_file((dir_ / "texts.json").string(),
                           R"({"configs": [{"dataset": "images", "aspect": "mood", "template": "a {item} picture",)"
                           R"( "items": ["happy", "sad", "calm"]}]})");
    r = run("embed --method indirect --components 4 --clip-model " + clip + " --indirect-texts " +
            (dir_ / "texts.json").string() + " " + (dir_ / "images").string() + " -o " + db());
    ASSERT_EQ(r.status, 0) << r.output;
    const nlohmann::json s = read_json(dir_ / "res" / "deepfashion-tiny_clip-quick-embedsrc=clip.json");
    EXPECT_EQ(s["results"].size(), 4u);  // CLIP has no condition: every aspect, none first
    r = run("embed --method indirect --clip-model " + clip + " " + (dir_ / "images").string() + " -o " + db());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("has no InDiReCT texts for 'images'"), std::string::npos) << r.output;
    r = run("embed --method clip " + (dir_ / "images").string() + " -o " + db());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("needs --clip-model"), std::string::npos) << r.output;
}

// The generative baseline in the same pipeline: the tiny LVLM answers, all-MiniLM-L6-v2 (real
// weights, tests/oracle/sentence_minilm.py) embeds the text; stored with its text, resumed,
// exported as the reference's files, imported back, evaluated.
TEST_F(Cli, GenerativeBaselineRunsStoresTextsExportsImportsAndEvaluates) {
    deepfashion(6, 56, 60, 8);
    const std::string enc    = std::string(DIOR_TEST_DATA_DIR) + "/sentence-minilm/f32.gguf";
    const std::string common = "embed " + model_args() + " --model-id tiny --dataset deepfashion --datasets-dir " +
                               (dir_ / "datasets").string() + " -o " + db() + " --method generative --text-encoder " +
                               enc + " --text-encoder-id sentence-transformers/all-MiniLM-L6-v2";
    const std::string args = common + " --max-new-tokens 4";
    auto              r    = run(args);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("6 images: 6 embedded, 0 skipped (already stored), 0 failed; 5 settings (generative) "
                            "(width 384)"),
              std::string::npos)
        << r.output;
    r = run(args);  // resumes: nothing to do
    EXPECT_NE(r.output.find("6 images: 0 embedded, 6 skipped"), std::string::npos) << r.output;
    {  // the sentence encoder as sentence-transformers runs it: a setting apart from older builds'
        auto st = dior::store::open(db(), true);
        for (const auto & s : st->settings()) {
            EXPECT_EQ(s.s.engine_options.substr(s.s.engine_options.rfind(' ') + 1), "sentence=st");
        }
    }

    r = run("status --texts --db " + db());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(count_lines_with(r.output, "img_000000", "system\\nYou are a helpful assistant.\\nuser\\nDescribe"), 30)
        << r.output;

    ASSERT_EQ(run("export --db " + db() + " --json " + (dir_ / "json").string()).status, 0);
    const fs::path gen = dir_ / "json" /
                         "deepfashion-tiny-describe-texture_type-embedsrc=generative-sentence-transformers_all-MiniLM-"
                         "L6-v2-max_tokens=4";
    ASSERT_TRUE(fs::is_directory(gen));
    const nlohmann::json j = read_json(gen / "Floral_Print_Shirt_Dress-img_00000065.json");
    EXPECT_EQ(j["source"], "generative");
    EXPECT_EQ(j["text_encoder"], "sentence-transformers/all-MiniLM-L6-v2");
    EXPECT_EQ(j["prompt"], "Describe this image in one word regarding texture type: \"");
    const std::string text = j["generated_text"].get<std::string>();
    const std::string head =
        "system\nYou are a helpful assistant.\nuser\nDescribe this image in one word regarding "
        "texture type: \"\nassistant\n";
    ASSERT_EQ(text.substr(0, head.size()), head);
    EXPECT_GT(text.size(), head.size());  // the answer follows
    // The vector is the sentence encoder's vector of exactly that text.
    auto               m = dior::sentence_encoder::load({ enc, 2 });
    const auto         v = m->encode(text);
    std::vector<float> got;
    for (const auto & x : j["embedding"]) {
        got.push_back(x.get<float>());
    }
    EXPECT_EQ(got, v);

    r = run("eval --db " + db() + " -o " + (dir_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("evaluated 5 settings"), std::string::npos) << r.output;

    // .npy export: the texts beside the rows, in the same order.
    ASSERT_EQ(run("export --db " + db() + " --npy " + (dir_ / "npy").string()).status, 0);
    const std::string stem =
        "deepfashion-tiny-describe-texture_type-embedsrc=generative-sentence-transformers_all-"
        "MiniLM-L6-v2-max_tokens=4";
    const nlohmann::json texts = read_json(dir_ / "npy" / (stem + ".texts.json"));
    ASSERT_EQ(texts.size(), 6u);
    std::ifstream rows(dir_ / "npy" / (stem + ".rows.txt"));
    size_t        at = 0, n_rows = 0;
    for (std::string row; std::getline(rows, row); ++n_rows) {
        at = row.find("Floral_Print_Shirt_Dress-img_00000065") != std::string::npos ? n_rows : at;
    }
    EXPECT_EQ(n_rows, 6u);
    EXPECT_EQ(texts[at].get<std::string>(), text);  // that image's text, as in its JSON file
    const nlohmann::json manifest = read_json(dir_ / "npy" / "manifest.json");
    EXPECT_EQ(manifest["settings"][1]["text_encoder"], "sentence-transformers/all-MiniLM-L6-v2");
    EXPECT_EQ(manifest["settings"][1]["embedded_text"], "whole");
    EXPECT_EQ(manifest["settings"][1]["generation"]["max_new_tokens"], 4);

    // Imported back from the reference's layout: the same settings, vectors and texts.
    r = run("import --db " + (dir_ / "i.db").string() + " " + (dir_ / "json").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("imported 5 settings, 30 vectors"), std::string::npos) << r.output;
    r = run("status --texts --db " + (dir_ / "i.db").string());
    EXPECT_EQ(count_lines_with(r.output, "img_000000", "system\\nYou are a helpful assistant."), 30) << r.output;
    EXPECT_NE(r.output.find("embedsrc=generative-sentence-transformers_all-MiniLM-L6-v2-max_tokens=4"),
              std::string::npos)
        << r.output;

    // The answer alone is a setting of its own, whose text is the answer.
    r = run(args + " --embed-text answer -c \"fit type\"");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("6 embedded"), std::string::npos) << r.output;
    auto       st       = dior::store::open(db(), true);
    const auto settings = st->settings();
    ASSERT_EQ(settings.size(), 6u);
    EXPECT_EQ(settings.back().s.text_mode, "answer");
    EXPECT_EQ(settings.back().s.max_new_tokens, 4);
    EXPECT_EQ(settings.back().s.positions, "native");  // the reference's generate() runs native M-RoPE
    const std::string answer_dir = dior::reference_dir_name(settings.back().s);  // never the reference's folder
    EXPECT_EQ(answer_dir.substr(answer_dir.size() - 18), "-embed_text=answer") << answer_dir;
    EXPECT_EQ(dior::parse_reference_dir_name(answer_dir)->text_mode, "answer");
    EXPECT_FALSE(dior::parse_reference_dir_name(
        "cub200-m-describe-None-num_layer=-1-num_token=-1-embedsrc=first_output-gen_max_new_tokens=99999999999"));
    EXPECT_FALSE(dior::parse_reference_dir_name(
        "cub200-m-describe-None-num_layer=-1-num_token=-1-embedsrc=first_output-gen_max_new_tokens=0"));
    for (const auto & t : texts_of(*st, settings.back().id)) {
        EXPECT_EQ(t.find("assistant"), std::string::npos) << t;
    }

    // Mistakes are named before any work.
    r = run("embed " + model_args() + " --method generative " + (dir_ / "images").string() + " -o " + db());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("needs --text-encoder"), std::string::npos) << r.output;
    r = run("embed " + model_args() + " --method generative --text-encoder " + dior::test::tiny_dir() + "/text.gguf " +
            (dir_ / "images").string() + " -o " + db());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("convert-sentence"), std::string::npos) << r.output;
    r = run(args + " --embed-text both");
    EXPECT_NE(r.output.find("--embed-text both"), std::string::npos) << r.output;
    r = run(common + " --max-new-tokens 0");
    EXPECT_NE(r.output.find("--max-new-tokens 0"), std::string::npos) << r.output;
    r = run(args + " --gen_do_sample --temperature 0.001");
    EXPECT_NE(r.output.find("temperature of 0.01 or more"), std::string::npos) << r.output;
    r = run(args + " --sample --seed 4294967295");
    EXPECT_NE(r.output.find("random seed"), std::string::npos) << r.output;
}

// first_output / mean_output: DIOR's vector at the generated tokens, one setting per source, named
// as the reference names them; sampling is reproducible from its seed.
TEST_F(Cli, GeneratedSourcesAndSamplingAreSettingsOfTheirOwn) {
    const std::string base = "embed " + model_args() + " --model-id tiny -c color " + (dir_ / "images").string() +
                             " -o " + db() + " --layer -1,0 --max-new-tokens 3";
    for (const char * src : { "input_last", "first_output", "mean_output" }) {
        auto r = run(base + " --source " + src);
        ASSERT_EQ(r.status, 0) << r.output;
    }
    auto r = run(base + " --source first_output --temperature 0.7");  // as transformers: greedy without --sample
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("--temperature without --sample is ignored"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("0 embedded, 3 skipped"), std::string::npos) << r.output;  // the greedy settings
    r = run(base + " --source mean_output --sample --temperature 1000 --seed 7");
    ASSERT_EQ(r.status, 0) << r.output;
    r = run(base + " --source bogus");
    EXPECT_NE(r.output.find("--source bogus"), std::string::npos) << r.output;

    auto       st = dior::store::open(db(), true);
    const auto ss = st->settings();
    ASSERT_EQ(ss.size(), 8u);
    std::vector<std::string> names;
    for (const auto & s : ss) {
        names.push_back(dior::reference_dir_name(s.s));
    }
    EXPECT_EQ(names[0], "images-tiny-describe-color-num_layer=-1-num_token=-1-embedsrc=input_last");
    EXPECT_EQ(names[2],
              "images-tiny-describe-color-num_layer=-1-num_token=-1-embedsrc=first_output-gen_max_new_tokens=3");
    EXPECT_EQ(names[5],
              "images-tiny-describe-color-num_layer=0-num_token=-1-embedsrc=mean_output-gen_max_new_tokens=3");
    EXPECT_EQ(names[7],
              "images-tiny-describe-color-num_layer=0-num_token=-1-embedsrc=mean_output-gen_max_new_tokens=3-"
              "sample-temp=1000.00");
    for (size_t i = 0; i < names.size(); ++i) {  // the names parse back to their sources
        const auto p = dior::parse_reference_dir_name(names[i]);
        ASSERT_TRUE(p) << names[i];
        EXPECT_EQ(p->source, ss[i].s.source);
        EXPECT_EQ(p->max_new_tokens, ss[i].s.max_new_tokens);
        EXPECT_EQ(p->temperature, ss[i].s.temperature);
    }
    // Three different vectors per image and layer; the answer is stored with the generated ones.
    const dior::matrix last = st->vectors(ss[0].id, nullptr), first = st->vectors(ss[2].id, nullptr),
                       mean = st->vectors(ss[4].id, nullptr);
    ASSERT_EQ(last.rows, 3u);
    EXPECT_NE(last.data, first.data);
    EXPECT_NE(first.data, mean.data);
    EXPECT_EQ(texts_of(*st, ss[0].id), std::vector<std::string>(3, ""));
    for (const auto & t : texts_of(*st, ss[2].id)) {
        EXPECT_FALSE(t.empty());
    }
    // Sampling: the same seed gives the same vectors in another store; greedy differs.
    st.reset();
    r = run("embed " + model_args() + " --model-id tiny -c color " + (dir_ / "images").string() + " -o " +
            (dir_ / "b.db").string() +
            " --layer -1,0 --max-new-tokens 3 --source mean_output --sample --temperature 1000 --seed 7");
    ASSERT_EQ(r.status, 0) << r.output;
    auto a = dior::store::open(db(), true), b = dior::store::open((dir_ / "b.db").string(), true);
    EXPECT_EQ(a->vectors(ss[6].id, nullptr).data, b->vectors(b->settings()[0].id, nullptr).data);
    EXPECT_EQ(texts_of(*a, ss[6].id), texts_of(*b, b->settings()[0].id));
    EXPECT_NE(texts_of(*a, ss[6].id), texts_of(*a, ss[4].id));  // sampled, not greedy
    b.reset();
    r = run("embed " + model_args() + " --model-id tiny -c color " + (dir_ / "images").string() + " -o " +
            (dir_ / "c.db").string() +
            " --layer -1,0 --max-new-tokens 3 --source mean_output --sample --temperature 1000 --seed 8");
    ASSERT_EQ(r.status, 0) << r.output;
    auto c = dior::store::open((dir_ / "c.db").string(), true);
    EXPECT_NE(texts_of(*a, ss[6].id), texts_of(*c, c->settings()[0].id));  // another seed, other answers
}

}  // namespace
