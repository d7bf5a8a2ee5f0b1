// CLIP's tokenizer against Hugging Face's CLIPTokenizerFast built from the real CLIP vocabulary
// (tests/oracle/clip_tokenizer.py): the InDiReCT texts, DIOR prompts, unicode, emoji, special-token
// text, whitespace runs and over-long strings.
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

std::vector<std::string> read_lines(const fs::path & p) {
    std::ifstream            f(p);
    std::vector<std::string> out;
    for (std::string line; std::getline(f, line);) {
        out.push_back(line);
    }
    return out;
}

TEST(ClipTokenizer, IdsEqualHuggingFaceOnTheTestStrings) {
    const fs::path dir    = fs::path(DIOR_TEST_DATA_DIR) / "clip-tokenizer";
    auto           tokens = read_lines(dir / "tokens.txt");
    auto           merges = read_lines(dir / "merges.txt");
    ASSERT_EQ(tokens.size(), 49408u);
    ASSERT_EQ(merges.size(), 48894u);
    const dior::clip_tokenizer tok(tokens, merges);
    EXPECT_EQ(tok.bos(), 49406);
    EXPECT_EQ(tok.eos(), 49407);

    std::ifstream        f(dir / "cases.json");
    const nlohmann::json cases = nlohmann::json::parse(f);
    int                  n = 0, bad = 0;
    for (const auto & c : cases) {
        const auto text = c["text"].get<std::string>();
        const auto want = c["ids"].get<std::vector<int32_t>>();
        const auto got  = tok.encode(text);
        if (got != want && ++bad <= 10) {
            std::string g, w;
            for (int32_t id : got) {
                g += std::to_string(id) + " ";
            }
            for (int32_t id : want) {
                w += std::to_string(id) + " ";
            }
            ADD_FAILURE() << "'" << text << "'\n  dior: " << g << "\n  HF:   " << w;
        }
        ++n;
    }
    EXPECT_GE(n, 600);
    EXPECT_EQ(bad, 0) << bad << " of " << n << " strings differ";
}

TEST(ClipTokenizer, TruncatesToTheContextKeepingTheEnd) {
    const fs::path             dir = fs::path(DIOR_TEST_DATA_DIR) / "clip-tokenizer";
    const dior::clip_tokenizer tok(read_lines(dir / "tokens.txt"), read_lines(dir / "merges.txt"));
    std::string                long_text;
    for (int i = 0; i < 200; ++i) {
        long_text += "cat ";
    }
    const auto ids = tok.encode(long_text);
    ASSERT_EQ(ids.size(), 77u);
    EXPECT_EQ(ids.front(), tok.bos());
    EXPECT_EQ(ids.back(), tok.eos());
    EXPECT_EQ(tok.encode("").size(), 2u);
    EXPECT_THROW(dior::clip_tokenizer({ "a", "b" }, {}), dior::error);  // no special tokens
}

}  // namespace
