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

// The model's own template, run by llama.cpp's Jinja engine as Hugging Face's apply_chat_template runs
// it: default system turns, the template's own BOS, and each family's image placeholder replaced by
// mtmd's image chunk plus what the family's processor adds around it.
TEST(ChatTemplate, TheModelsOwnTemplateIsRenderedWithItsImagePlaceholder) {
    const std::string qwen =
        "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
        "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% for content in "
        "message['content'] %}{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% "
        "elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if "
        "add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    auto l = dior::render_chat_layout(qwen, "", "<|im_end|>", "qwen2.5vl_merger", "<M>");
    EXPECT_EQ(l.head, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n");
    EXPECT_EQ(l.text_prefix, "");
    EXPECT_EQ(l.tail, "<|im_end|>\n<|im_start|>assistant\n");

    const std::string gemma =
        "{{ bos_token }}{%- for message in messages -%}{{ '<start_of_turn>' + message['role'] + '\n' }}{%- for item "
        "in message['content'] -%}{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}{%- elif item['type'] == "
        "'text' -%}{{ item['text'] | trim }}{%- endif -%}{%- endfor -%}{{ '<end_of_turn>\n' }}{%- endfor -%}{%- if "
        "add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}";
    l = dior::render_chat_layout(gemma, "<bos>", "<eos>", "gemma3", "<M>");
    EXPECT_EQ(l.head, "<bos><start_of_turn>user\n\n\n");
    EXPECT_EQ(l.text_prefix, "\n\n");
    EXPECT_EQ(l.tail, "<end_of_turn>\n<start_of_turn>model\n");

    // A family without a known placeholder: the marker in a text content, as llama.cpp's server does.
    const std::string plain = "{{ bos_token }}[INST]{{ messages[0]['content'] }}[/INST]";
    l                       = dior::render_chat_layout(plain, "<s>", "</s>", "pixtral", "<M>");
    EXPECT_EQ(l.head, "<s>[INST]");
    EXPECT_EQ(l.tail, "[/INST]");
    EXPECT_THROW(dior::render_chat_layout("{% for x in %}", "", "", "gemma3", "<M>"), std::exception);
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
