// The DIOR prompt templates (SPEC section 1): one per prompt type, with and without a condition.
#include "dior.h"

#include <array>

namespace dior {
namespace {

struct prompt_template {
    prompt_type  type;
    const char * name;
    const char * with_condition;  // {aspect} is where the condition goes
    const char * without_condition;
};

constexpr std::array<prompt_template, 7> templates = { {
    { prompt_type::describe, "describe", "Describe this image in one word regarding {aspect}: \"",
      "Describe this image in one word: \"" },
    { prompt_type::express, "express", "Express this image in one word in terms of {aspect}: \"",
      "Express this image in one word: \"" },
    { prompt_type::summarize, "summarize", "Summarize this image in one word regarding {aspect}: \"",
      "Summarize this image in one word: \"" },
    { prompt_type::capture, "capture", "Capture this image in one word based on {aspect}: \"",
      "Capture this image in one word: \"" },
    { prompt_type::convey, "convey", "Convey this image in one word with respect to {aspect}: \"",
      "Convey this image in one word: \"" },
    { prompt_type::depict, "depict", "Depict this image in one word, considering {aspect}: \"",
      "Depict this image in one word: \"" },
    { prompt_type::describe_unconstraint, "describe_unconstraint", "Describe this image regarding {aspect}: \"",
      "Describe this image: \"" },
} };

const prompt_template & find(prompt_type type) {
    for (const auto & t : templates) {
        if (t.type == type) {
            return t;
        }
    }
    return templates[0];
}

}  // namespace

const char * prompt_type_name(prompt_type type) {
    return find(type).name;
}

std::optional<prompt_type> parse_prompt_type(const std::string & name) {
    for (const auto & t : templates) {
        if (name == t.name) {
            return t.type;
        }
    }
    return std::nullopt;
}

std::vector<prompt_type> all_prompt_types() {
    std::vector<prompt_type> out;
    for (const auto & t : templates) {
        out.push_back(t.type);
    }
    return out;
}

std::string instruction(prompt_type type, const std::optional<std::string> & condition) {
    const prompt_template & t = find(type);
    if (!condition) {
        return t.without_condition;
    }
    std::string       text = t.with_condition;
    const std::string slot = "{aspect}";
    text.replace(text.find(slot), slot.size(), *condition);
    return text;
}

}  // namespace dior
