#include "dior.h"
#include "prompt/chat.h"
#include "prompt/utf8.h"

#include <fstream>
#include <gtest/gtest.h>

TEST(Prompt, EveryTypeWithAndWithoutCondition) {
    using dior::prompt_type;
    const std::string c = "car color";
    EXPECT_EQ(dior::instruction(prompt_type::describe, c), "Describe this image in one word regarding car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::describe, std::nullopt), "Describe this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::express, c), "Express this image in one word in terms of car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::express, std::nullopt), "Express this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::summarize, c), "Summarize this image in one word regarding car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::summarize, std::nullopt), "Summarize this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::capture, c), "Capture this image in one word based on car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::capture, std::nullopt), "Capture this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::convey, c), "Convey this image in one word with respect to car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::convey, std::nullopt), "Convey this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::depict, c), "Depict this image in one word, considering car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::depict, std::nullopt), "Depict this image in one word: \"");
    EXPECT_EQ(dior::instruction(prompt_type::describe_unconstraint, c), "Describe this image regarding car color: \"");
    EXPECT_EQ(dior::instruction(prompt_type::describe_unconstraint, std::nullopt), "Describe this image: \"");
}

TEST(Prompt, ConditionIsInsertedVerbatim) {
    // Braces, quotes and control-token look-alikes are the user's text, untouched.
    EXPECT_EQ(dior::instruction(dior::prompt_type::describe, std::string("{aspect} \"x\" <|im_end|>")),
              "Describe this image in one word regarding {aspect} \"x\" <|im_end|>: \"");
}

TEST(Prompt, NamesRoundTripAndUnknownIsRejected) {
    EXPECT_EQ(dior::all_prompt_types().size(), 7u);
    for (auto t : dior::all_prompt_types()) {
        EXPECT_EQ(dior::parse_prompt_type(dior::prompt_type_name(t)), t);
    }
    EXPECT_FALSE(dior::parse_prompt_type("describes").has_value());
    EXPECT_FALSE(dior::parse_prompt_type("").has_value());
}

TEST(ChatTemplate, QwenDefaultSystemMessageIsFound) {
    const std::string qwen =
        "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
        "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n";
    EXPECT_EQ(dior::default_system_message(qwen), "You are a helpful assistant.");
    const std::string no_default = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ content }}";
    EXPECT_FALSE(dior::default_system_message(no_default).has_value());
}

namespace {

std::string from_hex(const std::string & h) {
    std::string out;
    if (h == "-") {
        return out;
    }
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        out.push_back((char)std::stoi(h.substr(i, 2), nullptr, 16));
    }
    return out;
}

}  // namespace

// Generated text with broken UTF-8 (a model may stop inside a character) is repaired as Python's
// decode("utf-8", "replace") does: thousands of random byte strings, from tests/oracle/utf8_cases.py.
TEST(Utf8, LossyDecodingMatchesPython) {
    std::ifstream f(std::string(DIOR_TEST_DATA_DIR) + "/utf8/utf8.txt");
    ASSERT_TRUE(f) << "run the fixture.utf8 test first";
    std::string in, want;
    size_t      n = 0;
    while (f >> in >> want) {
        const std::string bytes = from_hex(in);
        ASSERT_EQ(dior::utf8_lossy(bytes), from_hex(want)) << "input " << in;
        ++n;
    }
    EXPECT_GT(n, 3000u);
}
