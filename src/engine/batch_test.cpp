// model::embed_many against model::embed on the tiny random-weight Qwen2.5-VL: several images of
// different sizes in shared forward passes give the vectors of one image at a time.
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>

namespace {

dior::image make_image(int w, int h, int seed) {
    dior::image img;
    img.source = "generated-" + std::to_string(seed);
    img.width  = w;
    img.height = h;
    img.rgb    = dior::test::pattern_rgb(w, h, seed);
    return img;
}

double rel_l2(const std::vector<float> & a, const std::vector<float> & b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        n += (double)b[i] * b[i];
    }
    return std::sqrt(d / std::max(n, 1e-30));
}

std::unique_ptr<dior::model> load(int image_batch, int n_batch = 64) {
    dior::model_params p;
    p.model_path  = dior::test::tiny_dir() + "/text.gguf";
    p.mmproj_path = dior::test::tiny_dir() + "/mmproj.gguf";
    p.n_threads   = 2;
    p.n_batch     = n_batch;  // small, so that image chunks span several decodes
    p.image_batch = image_batch;
    return dior::model::load(p);
}

// Five images of four sizes: 4 image tokens (below the 32 rows where ggml changes kernels) up to
// more than one n_batch.
std::vector<dior::image> mixed_images() {
    return { make_image(56, 56, 1), make_image(200, 120, 2), make_image(90, 300, 3), make_image(56, 56, 4),
             make_image(256, 256, 5) };
}

const std::vector<std::optional<std::string>> k_conditions = { "car color", std::nullopt, "movie genre", "a" };

// Every vector of embed_many against embed on the same model; returns the largest relative L2.
double compare(dior::model & m, const std::vector<dior::image> & imgs, const dior::embed_params & ep,
               int together = 3) {
    const auto many = m.embed_many(imgs, k_conditions, ep);
    EXPECT_EQ(many.size(), imgs.size());
    EXPECT_EQ(m.last_timings().most_images, together);  // the images did go through shared passes
    EXPECT_EQ(m.last_timings().suffix_ms.size(), imgs.size() * k_conditions.size());
    double worst = 0;
    for (size_t i = 0; i < imgs.size() && i < many.size(); ++i) {
        const auto one = m.embed(imgs[i], k_conditions, ep);
        EXPECT_EQ(many[i].size(), one.size());
        for (size_t c = 0; c < one.size() && c < many[i].size(); ++c) {
            EXPECT_EQ(many[i][c].condition, one[c].condition);
            EXPECT_EQ(many[i][c].n_tokens, one[c].n_tokens);
            EXPECT_EQ(many[i][c].vectors.size(), one[c].vectors.size());
            for (size_t l = 0; l < one[c].vectors.size() && l < many[i][c].vectors.size(); ++l) {
                worst = std::max(worst, rel_l2(many[i][c].vectors[l], one[c].vectors[l]));
            }
        }
    }
    return worst;
}

class Batch : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { m_ = load(3); }

    static void TearDownTestSuite() { m_.reset(); }

    static std::unique_ptr<dior::model> m_;
};

std::unique_ptr<dior::model> Batch::m_;

TEST_F(Batch, EveryLayerOfMixedSizesEqualsOneImageAtATime) {
    dior::embed_params ep;
    ep.layers = m_->all_layers();
    for (dior::positions pos : { dior::positions::sequential, dior::positions::native }) {
        ep.position        = pos;
        const double worst = compare(*m_, mixed_images(), ep);
        EXPECT_LE(worst, 1e-5) << "positions " << (int)pos;
        std::printf("every layer, positions %d: largest relative L2 %.3g\n", (int)pos, worst);
    }
}

TEST_F(Batch, EveryTokenOptionEqualsOneImageAtATime) {
    // Tokens in the system turn, among the image tokens of every image, in the template's words of
    // the smallest image (image tokens of the others), in the condition, and from the end.
    const auto toks  = m_->prompt_tokens(make_image(56, 56, 1), dior::instruction(dior::prompt_type::describe, "a"));
    const int  image = (int)(std::find(toks.begin(), toks.end(), -1) - toks.begin());
    ASSERT_LT(image, (int)toks.size());
    dior::embed_params ep;
    ep.layers = { 0, 1, -1 };
    for (int token : { 3, image + 1, image + 6, -1, -2, -7 }) {
        for (dior::prompt_type type : { dior::prompt_type::describe, dior::prompt_type::express }) {
            ep.token           = token;
            ep.prompt          = type;
            const double worst = compare(*m_, mixed_images(), ep);
            EXPECT_LE(worst, 1e-5) << "token " << token;
        }
    }
}

TEST_F(Batch, OneConditionAndOneImageGroupsAlsoAgree) {
    dior::embed_params ep;
    const auto         imgs = mixed_images();
    const auto         many = m_->embed_many(imgs, { "car color" }, ep);
    ASSERT_EQ(many.size(), imgs.size());
    EXPECT_EQ(m_->last_timings().most_images, 3);
    for (size_t i = 0; i < imgs.size(); ++i) {
        const auto one = m_->embed(imgs[i], { "car color" }, ep);
        EXPECT_LE(rel_l2(many[i][0].vectors[0], one[0].vectors[0]), 1e-5);
    }
    // A single image and an empty list.
    EXPECT_EQ(m_->embed_many({ imgs[0] }, { "car color" }, ep).size(), 1u);
    EXPECT_TRUE(m_->embed_many({}, { "car color" }, ep).empty());
}

TEST_F(Batch, GenerationAndFullRecomputationGoOneAtATimeWithTheSameResults) {
    dior::embed_params ep;
    ep.source                    = dior::embed_source::first_output;
    ep.generation.max_new_tokens = 3;
    const auto imgs              = std::vector<dior::image>{ make_image(56, 56, 1), make_image(120, 90, 2) };
    const auto many              = m_->embed_many(imgs, { "car color" }, ep);
    EXPECT_EQ(m_->last_timings().most_images, 1);
    for (size_t i = 0; i < imgs.size(); ++i) {
        const auto one = m_->embed(imgs[i], { "car color" }, ep);
        EXPECT_EQ(many[i][0].generated, one[0].generated);
        EXPECT_EQ(many[i][0].vectors[0], one[0].vectors[0]);
    }
    dior::embed_params no_reuse;
    no_reuse.reuse_prefix = false;
    const auto a          = m_->embed_many(imgs, k_conditions, no_reuse);
    const auto b          = m_->embed_many(imgs, k_conditions, dior::embed_params{});
    for (size_t i = 0; i < imgs.size(); ++i) {
        for (size_t c = 0; c < k_conditions.size(); ++c) {
            EXPECT_LE(rel_l2(a[i][c].vectors[0], b[i][c].vectors[0]), 1e-5);
        }
    }
}

TEST_F(Batch, AnImageTooLargeForTheContextIsNamed) {
    dior::model_params p;
    p.model_path  = dior::test::tiny_dir() + "/text.gguf";
    p.mmproj_path = dior::test::tiny_dir() + "/mmproj.gguf";
    p.n_threads   = 2;
    p.n_ctx       = 200;
    p.image_batch = 4;
    auto m        = dior::model::load(p);
    auto imgs     = std::vector<dior::image>{ make_image(56, 56, 1), make_image(400, 400, 7), make_image(56, 56, 2) };
    try {
        m->embed_many(imgs, { "car color" }, dior::embed_params{});
        FAIL() << "expected dior::error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("generated-7"), std::string::npos) << e.what();
    }
    imgs.erase(imgs.begin() + 1);
    EXPECT_EQ(m->embed_many(imgs, { "car color" }, dior::embed_params{}).size(), 2u);
    EXPECT_EQ(m->last_timings().most_images, 2);
}

// A context sized for several images gives a single image the vectors of a one-image context.
TEST(BatchContext, LargerContextLeavesOneImageUnchanged) {
    auto               a = load(1);
    auto               b = load(4);
    dior::embed_params ep;
    ep.layers        = { 1, -1 };
    const auto img   = make_image(200, 120, 2);
    const auto one   = a->embed(img, k_conditions, ep);
    const auto other = b->embed(img, k_conditions, ep);
    for (size_t c = 0; c < one.size(); ++c) {
        for (size_t l = 0; l < one[c].vectors.size(); ++l) {
            EXPECT_EQ(one[c].vectors[l], other[c].vectors[l]);
        }
    }
    // A model loaded for one image at a time gives embed_many the vectors of embed.
    EXPECT_EQ(a->embed_many({ img }, k_conditions, ep)[0][0].vectors, one[0].vectors);
}

}  // namespace
