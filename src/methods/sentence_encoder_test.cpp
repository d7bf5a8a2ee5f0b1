// Sentence encoders on llama.cpp against sentence-transformers 5.1.0 with the real all-MiniLM-L6-v2
// weights (tests/oracle/sentence_minilm.py): 400+ sentences (real ones and tests/oracle/hard_texts.py:
// every script, combining marks, special-token literals, control characters), the same token ids
// on every one, vectors within relative L2 1e-4 (f32) and cos 0.999 (f16).
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

// Every sentence of the oracle's list against sentence-transformers: the token ids it feeds the
// model, then the vectors, f32 (relative L2) and f16 (cos) weights. A text holding `known_gap` has
// the same ids but a vector known to differ (asserted, so that the note stays true when it is fixed).
void check_model(const char * model, const char * label, int max_seq_length, const char * id,
                 const char * known_gap = nullptr) {
    std::ifstream      f(dir(model) / "sentences.json"), fi(dir(model) / "ids.json");
    const auto         texts = nlohmann::json::parse(f).get<std::vector<std::string>>();
    const auto         ids   = nlohmann::json::parse(fi).get<std::vector<std::vector<int32_t>>>();
    const dior::matrix want  = dior::read_npy((dir(model) / "vectors.npy").string());
    struct bound {
        const char * type;
        double       min_cos, max_rel;
    };
    const bound types[] = { { "f32", 0.99999, 1e-4 }, { "f16", 0.999, 1.0 } };
    ASSERT_GE(texts.size(), 300u);
    ASSERT_EQ(ids.size(), texts.size());
    for (const auto & [type, min_cos, max_rel] : types) {
        auto m = dior::sentence_encoder::load({ (dir(model) / (std::string(type) + ".gguf")).string(), 2 });
        ASSERT_EQ((size_t)m->n_embd(), want.cols);
        EXPECT_EQ(m->max_seq_length(), max_seq_length);
        EXPECT_EQ(m->name(), id);
        double worst = 1, worst_rel = 0;
        size_t same_ids = 0;
        for (size_t i = 0; i < texts.size(); ++i) {
            const auto got = m->tokenize(texts[i]);
            EXPECT_EQ(got, ids[i]) << type << " '" << texts[i] << "'";
            same_ids += got == ids[i];
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
            const double cos = dot / std::sqrt(na * nb), rel = std::sqrt(d / nb);
            if (known_gap && texts[i].find(known_gap) != std::string::npos) {
                if (std::string(type) == "f32") {
                    EXPECT_GT(rel, max_rel) << type << " '" << texts[i] << "' matches now: drop the known gap";
                }
                continue;
            }
            worst     = std::min(worst, cos);
            worst_rel = std::max(worst_rel, rel);
            EXPECT_GE(cos, min_cos) << type << " '" << texts[i] << "'";
            EXPECT_LE(rel, max_rel) << type << " '" << texts[i] << "'";
            EXPECT_NEAR(na, 1.0, 1e-4);  // Normalize applied
        }
        std::printf("%s %s: %zu sentences, %zu with the same ids, worst cos %.7f, worst rel. L2 %.2e\n", label, type,
                    texts.size(), same_ids, worst, worst_rel);
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
// Known gap: a literal "<pad>" in the text. MPNet numbers positions from the padding id and gives a
// pad token the padding row (positions 2, 1, 3 for "<s> <pad> </s>"); llama.cpp's BERT numbers them
// in order. The ids are the same.
TEST(SentenceEncoder, TinyMpnetMatchesSentenceTransformers) {
    check_model("sentence-mpnet", "tiny MPNet", 64, "tiny/mpnet", "<pad>");
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
