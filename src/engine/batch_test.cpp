// model::embed_many against model::embed on the tiny random-weight Qwen2.5-VL: several images of
// different sizes in shared forward passes give the vectors of one image at a time.
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"
#include "llama.h"
#include "mtmd.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>

namespace {

using dior::test::pattern_image;

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

// Five images of five sizes: 4 image tokens (below the 32 rows where ggml changes kernels: encoded
// alone) up to more than one n_batch (the others share the vision encoder's passes).
std::vector<dior::image> mixed_images() {
    return { pattern_image(56, 56, 1), pattern_image(300, 200, 2), pattern_image(90, 300, 3),
             pattern_image(224, 224, 4), pattern_image(256, 256, 5) };
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
    const auto toks  = m_->prompt_tokens(pattern_image(56, 56, 1), dior::instruction(dior::prompt_type::describe, "a"));
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
    const auto imgs              = std::vector<dior::image>{ pattern_image(56, 56, 1), pattern_image(120, 90, 2) };
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
    auto imgs =
        std::vector<dior::image>{ pattern_image(56, 56, 1), pattern_image(400, 400, 7), pattern_image(56, 56, 2) };
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
    const auto img   = pattern_image(200, 120, 2);
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

// mtmd_encode_chunks (patch 0008): the vision encoder over several images of different sizes in
// one pass gives each image the embeddings of a pass of its own, bit for bit (every product is
// row-wise, attention and windows stay per image), with and without flash attention. Each image has
// 32 output tokens or more: below, a product alone would take another kernel than together (ggml-blas
// from 32 rows on), so the engine encodes such images alone on a CPU.
TEST(VisionList, SeveralImagesInOnePassEqualOneAtATime) {
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model *      lm = llama_model_load_from_file((dior::test::tiny_dir() + "/text.gguf").c_str(), mp);
    ASSERT_NE(lm, nullptr);
    for (auto fa : { LLAMA_FLASH_ATTN_TYPE_ENABLED, LLAMA_FLASH_ATTN_TYPE_DISABLED }) {
        mtmd_context_params cp = mtmd_context_params_default();
        cp.n_threads           = 2;
        cp.warmup              = false;
        cp.print_timings       = false;
        cp.flash_attn_type     = fa;
        mtmd_context * ctx     = mtmd_init_from_file((dior::test::tiny_dir() + "/mmproj.gguf").c_str(), lm, cp);
        ASSERT_NE(ctx, nullptr);
        ASSERT_TRUE(mtmd_supports_image_list(ctx));
        std::vector<mtmd_input_chunks *>      all;
        std::vector<const mtmd_input_chunk *> images;
        for (const auto & img : { pattern_image(224, 224, 1), pattern_image(308, 196, 2), pattern_image(84, 308, 3),
                                  pattern_image(448, 448, 4), pattern_image(168, 224, 5) }) {
            mtmd_bitmap *       bmp  = mtmd_bitmap_init((uint32_t)img.width, (uint32_t)img.height, img.rgb.data());
            const std::string   text = mtmd_default_marker();
            mtmd_input_text     in{ text.c_str(), text.size(), true, true };
            mtmd_input_chunks * chunks = mtmd_input_chunks_init();
            const mtmd_bitmap * bmps[] = { bmp };
            ASSERT_EQ(mtmd_tokenize(ctx, chunks, &in, bmps, 1), 0);
            mtmd_bitmap_free(bmp);
            for (size_t i = 0; i < mtmd_input_chunks_size(chunks); ++i) {
                if (mtmd_input_chunk_get_type(mtmd_input_chunks_get(chunks, i)) == MTMD_INPUT_CHUNK_TYPE_IMAGE) {
                    images.push_back(mtmd_input_chunks_get(chunks, i));
                }
            }
            all.push_back(chunks);
        }
        ASSERT_EQ(images.size(), 5u);
        for (const mtmd_input_chunk * c : images) {
            ASSERT_GE(mtmd_input_chunk_get_n_tokens(c), 32u);
        }
        const size_t       n_embd = (size_t)llama_model_n_embd_inp(lm);
        std::vector<float> one;
        for (const mtmd_input_chunk * c : images) {
            ASSERT_EQ(mtmd_encode_chunk(ctx, c), 0);
            const float * e = mtmd_get_output_embd(ctx);
            one.insert(one.end(), e, e + mtmd_input_chunk_get_n_tokens(c) * n_embd);
        }
        ASSERT_EQ(mtmd_encode_chunks(ctx, images.data(), images.size()), 0);
        const float * many = mtmd_get_output_embd(ctx);
        float         diff = 0;
        for (size_t i = 0; i < one.size(); ++i) {
            diff = std::max(diff, std::fabs(one[i] - many[i]));
        }
        EXPECT_EQ(diff, 0.0f) << "flash attention " << (int)fa;
        // Again after a larger graph: the scheduler's buffers grew, the results stay.
        ASSERT_EQ(mtmd_encode_chunks(ctx, images.data() + 1, 2), 0);
        const size_t skip = mtmd_input_chunk_get_n_tokens(images[0]) * n_embd;
        const size_t n = (mtmd_input_chunk_get_n_tokens(images[1]) + mtmd_input_chunk_get_n_tokens(images[2])) * n_embd;
        EXPECT_TRUE(std::equal(one.begin() + (std::ptrdiff_t)skip, one.begin() + (std::ptrdiff_t)(skip + n),
                               mtmd_get_output_embd(ctx)));
        for (auto * c : all) {
            mtmd_input_chunks_free(c);
        }
        mtmd_free(ctx);
    }
    llama_model_free(lm);
}

}  // namespace
