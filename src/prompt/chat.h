// Renders a DIOR conversation with the model's own chat template.
#pragma once

#include <optional>
#include <string>

struct llama_model;

namespace dior {

// The rendered conversation around the user's text: head + <media> + USER TEXT + tail.
// head and tail come from the template and may hold control tokens; the user text never does.
struct chat_layout {
    std::string head;
    std::string tail;
};

// One user turn whose content is [image, text], the generation prompt appended, and the
// template's own default system turn where it has one (as Hugging Face renders Qwen2-VL).
chat_layout make_chat_layout(const llama_model * model, const std::string & media_marker);

// The literal default system message of a ChatML template ("You are a helpful assistant." for
// Qwen2/2.5-VL), if the template inserts one when the conversation has no system turn.
std::optional<std::string> default_system_message(const std::string & chat_template);

}  // namespace dior
