#include "prompt/chat.h"

#include "dior.h"
#include "llama.h"

#include <regex>
#include <vector>

namespace dior {

std::optional<std::string> default_system_message(const std::string & tmpl) {
    // e.g. {% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a
    // helpful assistant.<|im_end|>\n{% endif %}
    static const std::regex re(R"(<\|im_start\|>system\n([^<{}]+)<\|im_end\|>)");
    std::smatch             m;
    if (std::regex_search(tmpl, m, re)) {
        return m[1].str();
    }
    return std::nullopt;
}

chat_layout make_chat_layout(const llama_model * model, const std::string & media_marker) {
    const char * tmpl = llama_model_chat_template(model, nullptr);
    if (tmpl == nullptr) {
        throw error("the model has no chat template (tokenizer.chat_template); use a chat/instruct model");
    }
    // A sentinel stands for the user's text, so that the text itself never passes through the
    // template renderer and can be tokenized on its own with special-token parsing off.
    const std::string sentinel =
        "\x1e\x1f"
        "dior-user-text"
        "\x1f\x1e";
    const std::string content = media_marker + sentinel;

    std::vector<llama_chat_message> msgs;
    const auto                      system = default_system_message(tmpl);
    if (system) {
        msgs.push_back({ "system", system->c_str() });
    }
    msgs.push_back({ "user", content.c_str() });

    std::vector<char> buf(4096);
    int32_t n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), (int32_t)buf.size());
    if (n > (int32_t)buf.size()) {
        buf.resize(n);
        n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), (int32_t)buf.size());
    }
    if (n < 0) {
        throw error("llama.cpp does not support this model's chat template; dior cannot render prompts for it");
    }
    const std::string rendered(buf.data(), n);
    const size_t      m = rendered.find(content);
    if (m == std::string::npos) {
        throw error("the chat template changed the user content; cannot place the image and the prompt");
    }
    return { rendered.substr(0, m), rendered.substr(m + content.size()) };
}

}  // namespace dior
