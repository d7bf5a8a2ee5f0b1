#include "prompt/chat.h"

#include "dior.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "json.h"
#include "llama.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace dior {
namespace {

// What a family's chat template writes for an image, and what its Hugging Face processor puts
// around the image tokens beyond what mtmd's image chunk holds (mtmd already adds the family's
// begin/end tokens, e.g. Qwen's <|vision_start|> ... <|vision_end|>).
struct image_placeholder {
    const char * projector;
    const char * in_template;
    const char * before;  // text before mtmd's image chunk
    const char * after;   // text between the image chunk and the user's text
};

constexpr image_placeholder k_placeholders[] = {
    { "qwen2vl_merger", "<|vision_start|><|image_pad|><|vision_end|>", "", "" },
    { "qwen2.5vl_merger", "<|vision_start|><|image_pad|><|vision_end|>", "", "" },
    { "qwen3vl_merger", "<|vision_start|><|image_pad|><|vision_end|>", "", "" },
    // Gemma3Processor: "\n\n<start_of_image>" + soft tokens + "<end_of_image>\n\n"
    { "gemma3", "<start_of_image>", "\n\n", "\n\n" },
    // Idefics3Processor / SmolVLMProcessor: tiles and the global image, all in mtmd's chunks
    { "idefics3", "<image>", "", "" },
    { "glm4v", "<|begin_of_image|><|image|><|end_of_image|>", "", "" },
    // No entry for Pixtral / Mistral 3: its templates take the media marker in a text content, and
    // mtmd's chunk holds the [IMG] and [IMG_BREAK] rows and adds [IMG_END], as the processor does.
};

// The user's text stands in the template as this sentinel, so that the text itself never passes
// through the template and can be tokenized on its own with special-token parsing off.
const std::string k_sentinel =
    "\x1e\x1f"
    "dior-user-text"
    "\x1f\x1e";

std::string run_template(const std::string & source, const nlohmann::json & content, const std::string & bos,
                         const std::string & eos) {
    const nlohmann::json inputs = {
        { "messages", nlohmann::json::array({ { { "role", "user" }, { "content", content } } }) },
        { "bos_token", bos },
        { "eos_token", eos },
        { "add_generation_prompt", true },
    };
    jinja::lexer   lexer;
    const auto     tokens  = lexer.tokenize(source);
    jinja::program program = jinja::parse_from_tokens(tokens);
    jinja::context ctx(tokens.source);
    jinja::global_from_json(ctx, common_json::parse(inputs.dump()), false);
    jinja::runtime     runtime(ctx);
    const jinja::value result = runtime.execute(program);
    return jinja::runtime::gather_string_parts(result)->as_string().str();
}

std::string token_text(const llama_vocab * vocab, llama_token t) {
    if (t == LLAMA_TOKEN_NULL) {
        return "";
    }
    char      buf[256];
    const int n = llama_token_to_piece(vocab, t, buf, sizeof(buf), 0, true);
    return n > 0 ? std::string(buf, n) : std::string();
}

// llama.cpp's built-in rendering of known template formats: for templates its Jinja engine cannot
// run. It writes no BOS and no default system turn (Qwen's is added by hand).
chat_layout builtin_layout(const char * tmpl, const std::string & media_marker) {
    const std::string content = media_marker + k_sentinel;

    std::vector<llama_chat_message> msgs;
    const std::string               qwen_system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>";
    if (std::string(tmpl).find(qwen_system) != std::string::npos) {
        msgs.push_back({ "system", "You are a helpful assistant." });
    }
    msgs.push_back({ "user", content.c_str() });
    std::vector<char> buf(4096);
    int32_t n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), (int32_t)buf.size());
    if (n > (int32_t)buf.size()) {
        buf.resize(n);
        n = llama_chat_apply_template(tmpl, msgs.data(), msgs.size(), true, buf.data(), (int32_t)buf.size());
    }
    if (n < 0) {
        throw error("neither llama.cpp's Jinja engine nor its built-in formats can render this model's chat template");
    }
    const std::string rendered(buf.data(), n);
    const size_t      m = rendered.find(content);
    if (m == std::string::npos) {
        throw error("the chat template changed the user content; cannot place the image and the prompt");
    }
    return { rendered.substr(0, m), "", rendered.substr(m + content.size()), false };
}

}  // namespace

chat_layout render_chat_layout(const std::string & source, const std::string & bos, const std::string & eos,
                               const std::string & projector, const std::string & media_marker) {
    const image_placeholder * ph = nullptr;
    for (const auto & p : k_placeholders) {
        if (projector == p.projector) {
            ph = &p;
        }
    }
    if (ph) {  // [image, text] as the reference passes it; the processor expands the placeholder
        const nlohmann::json content =
            nlohmann::json::array({ { { "type", "image" } }, { { "type", "text" }, { "text", k_sentinel } } });
        const std::string out = run_template(source, content, bos, eos);
        const size_t      s   = out.find(k_sentinel);
        const size_t      i   = s == std::string::npos ? s : out.rfind(ph->in_template, s);
        if (i != std::string::npos && i + std::string(ph->in_template).size() == s) {
            return { out.substr(0, i) + ph->before, ph->after, out.substr(s + k_sentinel.size()), true };
        }
    }
    // Other families: the media marker in a text content, where mtmd puts the image.
    const std::string out = run_template(source, media_marker + k_sentinel, bos, eos);
    const size_t      m   = out.find(media_marker + k_sentinel);
    if (m == std::string::npos) {
        throw error("the chat template changed the user content; cannot place the image and the prompt");
    }
    return { out.substr(0, m), "", out.substr(m + media_marker.size() + k_sentinel.size()), true };
}

chat_layout make_chat_layout(const llama_model * model, const std::string & projector,
                             const std::string & media_marker) {
    const char * tmpl = llama_model_chat_template(model, nullptr);
    if (tmpl == nullptr) {
        throw error("the model has no chat template (tokenizer.chat_template); use a chat/instruct model");
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    try {
        return render_chat_layout(tmpl, token_text(vocab, llama_vocab_bos(vocab)),
                                  token_text(vocab, llama_vocab_eos(vocab)), projector, media_marker);
    } catch (const error &) {
        throw;
    } catch (const std::exception &) {  // a template the Jinja engine cannot run
        return builtin_layout(tmpl, media_marker);
    }
}

}  // namespace dior
