// Text vectors from the command line: dior embed-text (CLIP text features, sentence vectors) bit-equal
// to the library calls, and dior search --text (text-to-image neighbours under CLIP settings) equal
// to a brute-force scan of the stored image vectors.
#include "../../tests/support/sample_store.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace {

dior::test::run_result run(const std::string & args) {
    return dior::test::run_shell(dior::test::dior_bin() + " " + args);
}

const std::string k_clip     = std::string(DIOR_TEST_DATA_DIR) + "/hf-clip/gelu/f32.gguf";
const std::string k_sentence = std::string(DIOR_TEST_DATA_DIR) + "/sentence-minilm/f32.gguf";

// Texts a shell passes unchanged inside single quotes: scripts, marks, emoji, special-token text.
const std::vector<std::string> k_texts = { "a photo of a red car",
                                           "빨간 자동차",
                                           "cafe\xcc\x81 cr\xc3\xa8me",
                                           "[MASK] car",
                                           "<|endoftext|> inside",
                                           "\xf0\x9f\x9a\x97 emoji",
                                           "" };

std::string quoted(const std::vector<std::string> & texts) {
    std::string out;
    for (const auto & t : texts) {
        out += " '" + t + "'";
    }
    return out;
}

std::vector<float> row(const dior::matrix & x, size_t i) {
    return std::vector<float>(x.data.begin() + (long)(i * x.cols), x.data.begin() + (long)((i + 1) * x.cols));
}

void expect_bit_equal(const std::vector<float> & a, const std::vector<float> & b, const std::string & what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
}

class TextCli : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dior_text_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
                std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
    }

    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;
};

TEST_F(TextCli, EmbedTextGivesTheLibrarysClipTextFeatures) {
    const auto r = run("embed-text --clip-model " + k_clip + " -t 2" + quoted(k_texts));
    ASSERT_EQ(r.status, 0) << r.output;
    const json j = json::parse(r.output.substr(r.output.find('{')));
    auto       m = dior::clip_model::load({ k_clip, 2 });
    EXPECT_EQ(j["kind"], "clip");
    EXPECT_EQ(j["model"], m->name());
    EXPECT_EQ(j["width"], m->projection_dim());
    ASSERT_EQ(j["vectors"].size(), k_texts.size());
    for (size_t i = 0; i < k_texts.size(); ++i) {
        EXPECT_EQ(j["vectors"][i]["text"], k_texts[i]);
        expect_bit_equal(j["vectors"][i]["vector"].get<std::vector<float>>(), m->text_features(k_texts[i]), k_texts[i]);
    }
    // --npy and --file: the same vectors, one row a line of the file
    {
        std::ofstream f(dir_ / "texts.txt", std::ios::binary);
        f << k_texts[0] << "\r\n" << k_texts[1] << "\n" << k_texts[2];
    }
    const auto n = run("embed-text --clip-model " + k_clip + " -t 2 --file " + (dir_ / "texts.txt").string() +
                       " --npy " + (dir_ / "t.npy").string());
    ASSERT_EQ(n.status, 0) << n.output;
    const dior::matrix x = dior::read_npy((dir_ / "t.npy").string());
    ASSERT_EQ(x.rows, 3u);
    for (size_t i = 0; i < 3; ++i) {
        expect_bit_equal(row(x, i), m->text_features(k_texts[i]), k_texts[i]);
    }
}

TEST_F(TextCli, EmbedTextGivesTheLibrarysSentenceVectors) {
    const auto r = run("embed-text --sentence-model " + k_sentence + " -t 2" + quoted(k_texts));
    ASSERT_EQ(r.status, 0) << r.output;
    const json j = json::parse(r.output.substr(r.output.find('{')));
    auto       m = dior::sentence_encoder::load({ k_sentence, 2 });
    EXPECT_EQ(j["kind"], "sentence");
    EXPECT_EQ(j["model"], "sentence-transformers/all-MiniLM-L6-v2");
    ASSERT_EQ(j["vectors"].size(), k_texts.size());
    for (size_t i = 0; i < k_texts.size(); ++i) {
        expect_bit_equal(j["vectors"][i]["vector"].get<std::vector<float>>(), m->encode(k_texts[i]), k_texts[i]);
    }
}

TEST_F(TextCli, EmbedTextMistakesGetClearErrors) {
    auto r = run("embed-text x");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("give one of --clip-model FILE"), std::string::npos) << r.output;
    r = run("embed-text --clip-model " + k_clip + " --sentence-model " + k_sentence + " x");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("give one of"), std::string::npos) << r.output;
    r = run("embed-text --clip-model " + k_clip);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("no texts"), std::string::npos) << r.output;
    r = run("embed-text --sentence-model " + k_clip + " x");  // a CLIP file is not a sentence encoder
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find(k_clip), std::string::npos) << r.output;
}

// dior search --text under a CLIP setting: the neighbours of the text's CLIP features among the
// stored image features, ranked and measured as a brute-force scan does.
TEST_F(TextCli, SearchByTextRanksStoredImagesByTheirDistanceToTheTextFeatures) {
    for (int i = 0; i < 6; ++i) {
        const int w = 40 + 9 * i, h = 36 + 5 * i;
        dior::test::write_bmp((dir_ / "images" / ("im" + std::to_string(i) + ".bmp")).string(), w, h,
                              dior::test::pattern_rgb(w, h, i));
    }
    const std::string db = (dir_ / "e.db").string();
    auto r = run("embed --method clip --clip-model " + k_clip + " -t 2 " + (dir_ / "images").string() + " -o " + db);
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string text = "a photo of a red car";
    r                      = run("search --db " + db + " --json -k 4 --text '" + text + "'");
    ASSERT_EQ(r.status, 0) << r.output;
    const json j = json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j["text"], text);
    ASSERT_EQ(j["results"].size(), 1u);
    const json & res = j["results"][0];
    EXPECT_EQ(res["setting"]["method"], "clip");

    auto       m = dior::clip_model::load({ k_clip, 2 });
    const auto q = m->text_features(text);
    expect_bit_equal(res["query_vector"].get<std::vector<float>>(), q, "query_vector");
    auto                                        st = dior::store::open(db, true);
    std::vector<std::string>                    paths;
    const dior::matrix                          x = st->vectors(st->settings()[0].id, &paths);
    std::vector<std::pair<double, std::string>> want;
    for (size_t i = 0; i < x.rows; ++i) {
        double d = 0;
        for (size_t c = 0; c < x.cols; ++c) {
            d += ((double)x.data[i * x.cols + c] - q[c]) * ((double)x.data[i * x.cols + c] - q[c]);
        }
        want.emplace_back(std::sqrt(d), paths[i]);
    }
    std::sort(want.begin(), want.end());
    ASSERT_EQ(res["neighbors"].size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(res["neighbors"][i]["path"], want[i].second) << i;
        EXPECT_NEAR(res["neighbors"][i]["distance"].get<double>(), want[i].first, 1e-4 * want[i].first) << i;
    }

    // the plain output names the text; mistakes are clear
    r = run("search --db " + db + " -k 2 --text '" + text + "'");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("query text 'a photo of a red car' (text features)"), std::string::npos) << r.output;
    r = run("search --db " + db + " " + (dir_ / "images" / "im0.bmp").string() + " --text x");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("a query image or --text TEXT (one of them)"), std::string::npos) << r.output;
    r = run("search --db " + db);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("one of them"), std::string::npos) << r.output;
}

// dior search --text under InDiReCT settings: the text's CLIP features through each setting's
// projection U, fitted again from the reference's texts; that U is the run's (the stored image
// vectors are normalize(U normalize(image features)) with it, bit for bit).
TEST_F(TextCli, SearchByTextUnderInDiReCTSettingsProjectsTheTextAsTheRunProjectedImages) {
    std::vector<std::string> names;
    for (int i = 0; i < 5; ++i) {
        const int w = 44 + 7 * i, h = 40 + 3 * i;
        names.push_back("im" + std::to_string(i) + ".bmp");
        dior::test::write_bmp((dir_ / "images" / names.back()).string(), w, h, dior::test::pattern_rgb(w, h, i + 3));
    }
    const std::string db = (dir_ / "e.db").string();
    auto r = run("embed --method indirect --components 4 --name deepfashion --clip-model " + k_clip + " -t 2 " +
                 (dir_ / "images").string() + " -o " + db);
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string text = "a photo of a floral dress";
    r                      = run("search --db " + db + " --json -k 2 --text '" + text + "'");
    ASSERT_EQ(r.status, 0) << r.output;
    const json j = json::parse(r.output.substr(r.output.find('{')));

    auto       m     = dior::clip_model::load({ k_clip, 2 });
    const auto feats = m->text_features(text);
    auto       st    = dior::store::open(db, true);
    const auto texts =
        dior::load_indirect_texts(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/indirect_texts.json");
    ASSERT_EQ(j["results"].size(), st->settings().size());
    ASSERT_GE(j["results"].size(), 2u);
    for (const auto & res : j["results"]) {
        EXPECT_EQ(res["setting"]["method"], "indirect");
        const auto &                 aspect = res["setting"]["condition"];
        const dior::indirect_texts * t      = nullptr;
        for (const auto & x : texts) {
            if (x.dataset == "deepfashion" && aspect == x.aspect) {
                t = &x;
            }
        }
        ASSERT_NE(t, nullptr) << aspect;
        dior::dimredrecon_params dp;
        dp.components = 4;
        const auto u  = dior::fit_dimredrecon(dior::indirect_text_matrix(*m, t->texts), dp).u;
        expect_bit_equal(res["query_vector"].get<std::vector<float>>(), dior::indirect_embed(u, feats), aspect);
        std::vector<std::string> paths;
        const dior::matrix       x = st->vectors(res["setting"]["id"].get<int64_t>(), &paths);
        for (size_t i = 0; i < x.rows; ++i) {
            const auto img = dior::load_image(paths[i]);
            expect_bit_equal(row(x, i), dior::indirect_embed(u, m->image_features(img)), paths[i]);
        }
    }
    // texts the run did not use: the setting's hash does not match, and the error says what to pass
    {
        std::ofstream f(dir_ / "other.json");
        f << R"({"configs": [{"dataset": "deepfashion", "aspect": "texture", "template": "a {item} cloth",)"
          << R"( "items": ["plain", "striped"]}]})";
    }
    r = run("search --db " + db + " --text x --indirect-texts " + (dir_ / "other.json").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("--indirect-texts with the file the run used"), std::string::npos) << r.output;
}

// A store whose settings are DIOR's only: a text query has no space to land in.
TEST_F(TextCli, SearchByTextWithoutAClipSettingSaysWhatToDo) {
    dior::test::write_bmp((dir_ / "images" / "a.bmp").string(), 40, 30, dior::test::pattern_rgb(40, 30, 1));
    const std::string db = (dir_ / "e.db").string();
    auto r = run("embed " + dior::test::tiny_model_args() + " -c color " + (dir_ / "images").string() + " -o " + db);
    ASSERT_EQ(r.status, 0) << r.output;
    r = run("search --db " + db + " --text 'red'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("a text query needs a CLIP or InDiReCT setting"), std::string::npos) << r.output;
    r = run("search --db " + db + " --method dior --text 'red'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("--method clip"), std::string::npos) << r.output;
}

}  // namespace
