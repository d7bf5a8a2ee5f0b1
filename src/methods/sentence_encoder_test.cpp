// Sentence encoders on llama.cpp against sentence-transformers 5.1.0 with the real all-MiniLM-L6-v2
// weights (tests/oracle/sentence_minilm.py): 200+ real sentences, f32 and f16.
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

fs::path dir(const char * model = "sentence-minilm") {
    return fs::path(DIOR_TEST_DATA_DIR) / model;
}

// Every sentence of the oracle's list against sentence-transformers, f32 and f16 weights.
void check_model(const char * model, const char * label, int max_seq_length, const char * id) {
    std::ifstream                         f(dir(model) / "sentences.json");
    const auto                            texts   = nlohmann::json::parse(f).get<std::vector<std::string>>();
    const dior::matrix                    want    = dior::read_npy((dir(model) / "vectors.npy").string());
    const std::pair<const char *, double> types[] = { { "f32", 0.9999 }, { "f16", 0.999 } };
    ASSERT_GE(texts.size(), 200u);
    for (const auto & [type, min_cos] : types) {
        auto m = dior::sentence_encoder::load({ (dir(model) / (std::string(type) + ".gguf")).string(), 2 });
        ASSERT_EQ((size_t)m->n_embd(), want.cols);
        EXPECT_EQ(m->max_seq_length(), max_seq_length);
        EXPECT_EQ(m->name(), id);
        double worst = 1, worst_rel = 0;
        for (size_t i = 0; i < texts.size(); ++i) {
            const auto v = m->encode(texts[i]);
            ASSERT_EQ(v.size(), want.cols);
            double dot = 0, na = 0, nb = 0, d = 0;
            for (size_t j = 0; j < v.size(); ++j) {
                const double b = want.data[i * want.cols + j];
                dot += v[j] * b;
                na += (double)v[j] * v[j];
                nb += b * b;
                d += (v[j] - b) * (v[j] - b);
            }
            const double cos = dot / std::sqrt(na * nb);
            worst            = std::min(worst, cos);
            worst_rel        = std::max(worst_rel, std::sqrt(d / nb));
            EXPECT_GE(cos, min_cos) << type << " '" << texts[i] << "'";
            EXPECT_NEAR(na, 1.0, 1e-4);  // Normalize applied
        }
        std::printf("%s %s: %zu sentences, worst cos %.7f, worst rel. L2 %.2e\n", label, type, texts.size(), worst,
                    worst_rel);
    }
}

TEST(SentenceEncoder, MiniLmMatchesSentenceTransformers) {
    check_model("sentence-minilm", "all-MiniLM-L6-v2", 256, "sentence-transformers/all-MiniLM-L6-v2");
}

// sentence-t5's layout (T5 encoder, mean pooling, Dense 32 -> 24 in llama.cpp's graph, Normalize)
// on a tiny random model with a real SentencePiece tokenizer (tests/oracle/sentence_t5.py).
TEST(SentenceEncoder, TinySentenceT5MatchesSentenceTransformers) {
    check_model("sentence-t5", "tiny sentence-T5", 64, "tiny/sentence-t5");
}

// all-mpnet-base-v2's layout (MPNet: BERT plus a relative position bias shared by all layers,
// written as llama.cpp's BERT with dior's patch 0003; mean pooling, Normalize) on a tiny random
// model with MPNet's tokenizer (tests/oracle/sentence_mpnet.py).
TEST(SentenceEncoder, TinyMpnetMatchesSentenceTransformers) {
    check_model("sentence-mpnet", "tiny MPNet", 64, "tiny/mpnet");
}

TEST(SentenceEncoder, LongTextIsTruncatedToMaxSeqLength) {
    auto        m = dior::sentence_encoder::load({ (dir() / "f32.gguf").string(), 2 });
    std::string t;
    for (int i = 0; i < 400; ++i) {
        t += "word ";
    }
    const auto ids = m->tokenize(t);
    EXPECT_EQ(ids.size(), 256u);
    EXPECT_EQ(ids.back(), m->tokenize("").back());  // the end token stays last
    EXPECT_THROW(dior::sentence_encoder::load({ dior::test::tiny_dir() + "/text.gguf", 1 }), dior::error);
}

}  // namespace
