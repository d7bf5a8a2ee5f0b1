// CLIP on ggml against Hugging Face's CLIPModel (tests/oracle/hf_clip.py): two tiny random
// configurations converted by tools/convert-clip, in f32, f16 and q8_0; the preprocessing against
// the reference's CLIPProcessor, image and text features against get_image_features /
// get_text_features.
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

fs::path dir() {
    return fs::path(DIOR_TEST_DATA_DIR) / "hf-clip";
}

nlohmann::json cases() {
    std::ifstream f(dir() / "cases.json");
    return nlohmann::json::parse(f);
}

void compare(const std::vector<float> & a, const float * b, double & cos, double & rel) {
    double dot = 0, na = 0, nb = 0, d = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    cos = dot / std::sqrt(na * nb);
    rel = std::sqrt(d / nb);
}

// Stated bounds per weight type (transformers in f32).
struct bound {
    const char * type;
    double       min_cos, max_rel;
};

const bound k_bounds[] = { { "f32", 0.99999, 1e-5 }, { "f16", 0.999, 1e-2 }, { "q8_0", 0.99, 5e-2 } };

TEST(Clip, PreprocessingEqualsTheReferenceProcessor) {
    const auto c = cases();
    for (const auto & cfg : c["configs"]) {
        auto m = dior::clip_model::load({ (dir() / cfg.get<std::string>() / "f32.gguf").string(), 2 });
        for (size_t k = 0; k < c["images"].size(); ++k) {
            const dior::image  img = dior::load_image((dir() / "images" / c["images"][k].get<std::string>()).string());
            const auto         px  = m->preprocess(img);
            const dior::matrix want =
                dior::read_npy((dir() / cfg.get<std::string>() / ("pixels_" + std::to_string(k) + ".npy")).string());
            ASSERT_EQ(px.size(), want.data.size()) << cfg << " image " << k;
            double worst = 0;
            for (size_t i = 0; i < px.size(); ++i) {
                worst = std::max(worst, (double)std::fabs(px[i] - want.data[i]));
            }
            EXPECT_EQ(worst, 0.0) << cfg << " " << c["images"][k];  // bit-exact, PNG and JPEG
        }
    }
}

TEST(Clip, FeaturesMatchTransformers) {
    const auto c = cases();
    for (const auto & cfg : c["configs"]) {
        const std::string  name = cfg.get<std::string>();
        const dior::matrix wi   = dior::read_npy((dir() / name / "image_features.npy").string());
        const dior::matrix wt   = dior::read_npy((dir() / name / "text_features.npy").string());
        for (const auto & b : k_bounds) {
            auto   m         = dior::clip_model::load({ (dir() / name / (std::string(b.type) + ".gguf")).string(), 2 });
            double worst_cos = 1, worst_rel = 0;
            ASSERT_EQ((size_t)m->projection_dim(), wi.cols);
            for (size_t k = 0; k < c["images"].size(); ++k) {
                const auto f = m->image_features(
                    dior::load_image((dir() / "images" / c["images"][k].get<std::string>()).string()));
                double cos = 0, rel = 0;
                compare(f, &wi.data[k * wi.cols], cos, rel);
                worst_cos = std::min(worst_cos, cos);
                worst_rel = std::max(worst_rel, rel);
            }
            std::printf("%-6s %-5s image features: worst cos %.7f, worst rel. L2 %.2e\n", name.c_str(), b.type,
                        worst_cos, worst_rel);
            EXPECT_GE(worst_cos, b.min_cos) << name << " " << b.type;
            EXPECT_LE(worst_rel, b.max_rel) << name << " " << b.type;
            worst_cos = 1;
            worst_rel = 0;
            for (size_t k = 0; k < c["texts"].size(); ++k) {
                const auto f   = m->text_features(c["texts"][k].get<std::string>());
                double     cos = 0, rel = 0;
                compare(f, &wt.data[k * wt.cols], cos, rel);
                worst_cos = std::min(worst_cos, cos);
                worst_rel = std::max(worst_rel, rel);
                EXPECT_GE(cos, b.min_cos) << name << " " << b.type << " '" << c["texts"][k] << "'";
            }
            std::printf("%-6s %-5s text features:  worst cos %.7f, worst rel. L2 %.2e\n", name.c_str(), b.type,
                        worst_cos, worst_rel);
            EXPECT_LE(worst_rel, b.max_rel) << name << " " << b.type;
        }
    }
}

TEST(Clip, NotAClipModelIsAClearError) {
    try {
        dior::clip_model::load({ dior::test::tiny_dir() + "/text.gguf", 1 });
        FAIL() << "no error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("not a dior CLIP model"), std::string::npos) << e.what();
    }
    EXPECT_THROW(dior::clip_model::load({ "/nonexistent.gguf", 1 }), dior::error);
}

}  // namespace
