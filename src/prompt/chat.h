// Renders a DIOR conversation with the model's own chat template.
#pragma once

#include <string>

struct llama_model;

namespace dior {

// The rendered conversation around the user's text: head + <media> + text_prefix + USER TEXT +
// tail. head and tail come from the template and may hold control tokens; the user text never
// does. text_prefix is text the family's processor puts between the image and the user's text
// (Gemma 3's "\n\n"), tokenized together with the user's text as the processor does.
struct chat_layout {
    std::string head;
    std::string text_prefix;
    std::string tail;
    bool        jinja = true;  // rendered by the template itself (false: llama.cpp's built-in format)
};

// One user turn whose content is [image, text], the generation prompt appended, rendered as
// Hugging Face's apply_chat_template renders it: the model's Jinja template (tokenizer.chat_template)
// run by llama.cpp's Jinja engine with bos_token and eos_token, default system turns and all.
// `projector` (the mmproj's clip.projector_type) says how the family's processor expands the
// image placeholder the template writes, so that mtmd's image chunk takes its place.
chat_layout make_chat_layout(const llama_model * model, const std::string & projector,
                             const std::string & media_marker);

// The same from a template's text (for tests): bos and eos as the tokenizer's special tokens.
chat_layout render_chat_layout(const std::string & chat_template, const std::string & bos, const std::string & eos,
                               const std::string & projector, const std::string & media_marker);

}  // namespace dior
