// Writes a tiny random-weight Qwen2.5-VL pair in real GGUF form, for tests and benchmarks:
//   <out>/text.gguf    general.architecture = qwen2vl, the real Qwen2 BPE tokenizer (taken from
//                      llama.cpp's models/ggml-vocab-qwen2.gguf, Qwen2.5-VL's added tokens set)
//                      and Qwen2.5-VL's chat template
//   <out>/mmproj.gguf  clip.projector_type = qwen2.5vl_merger
// The same seed gives the same files. Widths are options, so the same tool can write a model
// shaped like Qwen2.5-VL-3B for benchmarks (never commit one).
#include "ggml.h"
#include "gguf.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

// Qwen2.5-VL's chat template (its chat_template.json), the one llama.cpp's converter stores.
const char * k_chat_template =
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}"
    "<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in "
    "content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] "
    "== 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content "
    "%}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}"
    "<|im_start|>assistant\n{% endif %}";

// Qwen2.5-VL's added tokens beyond the base Qwen2 vocabulary (tokenizer.json), with their type:
// 3 = control, 4 = user-defined.
struct added_token {
    int          id;
    const char * text;
    int          type;
};

const added_token k_added[] = {
    { 151646, "<|object_ref_start|>", 3 }, { 151647, "<|object_ref_end|>", 3 }, { 151648, "<|box_start|>", 3 },
    { 151649, "<|box_end|>", 3 },          { 151650, "<|quad_start|>", 3 },     { 151651, "<|quad_end|>", 3 },
    { 151652, "<|vision_start|>", 3 },     { 151653, "<|vision_end|>", 3 },     { 151654, "<|vision_pad|>", 3 },
    { 151655, "<|image_pad|>", 3 },        { 151656, "<|video_pad|>", 3 },      { 151657, "<tool_call>", 4 },
    { 151658, "</tool_call>", 4 },         { 151659, "<|fim_prefix|>", 3 },     { 151660, "<|fim_middle|>", 3 },
    { 151661, "<|fim_suffix|>", 3 },       { 151662, "<|fim_pad|>", 3 },        { 151663, "<|repo_name|>", 3 },
    { 151664, "<|file_sep|>", 3 },
};

struct options {
    std::string out_dir;
    std::string vocab;
    uint32_t    seed    = 42;
    bool        f16     = false;
    float       rms_eps = 1e-6f;  // Qwen2.5-VL's value
    // text model
    int n_embd = 64, n_layer = 4, n_head = 4, n_head_kv = 2, n_ff = 128, n_ctx = 32768;
    // vision tower
    int v_embd = 32, v_layer = 2, v_head = 2, v_ff = 48, v_wa_pattern = 2;
};

class writer {
  public:
    writer(size_t mem, uint32_t seed, bool f16) : rng_(seed), f16_(f16) {
        ggml_init_params ip{ mem, nullptr, false };
        ctx_  = ggml_init(ip);
        gguf_ = gguf_init_empty();
    }

    ~writer() {
        gguf_free(gguf_);
        ggml_free(ctx_);
    }

    gguf_context * gguf() { return gguf_; }

    // A weight matrix ne = {in, out} ~ N(0, std^2); vectors may be near one (norms) or small (biases).
    void add(const std::string & name, std::vector<int64_t> ne, float mean, float stddev, bool allow_f16 = true) {
        int64_t n = 1;
        for (auto d : ne) {
            n *= d;
        }
        const bool    half = f16_ && allow_f16 && ne.size() >= 2;
        ggml_tensor * t    = ggml_new_tensor(ctx_, half ? GGML_TYPE_F16 : GGML_TYPE_F32, (int)ne.size(), ne.data());
        std::normal_distribution<float> dist(mean, stddev);
        for (int64_t i = 0; i < n; ++i) {
            const float v = dist(rng_);
            if (half) {
                ((ggml_fp16_t *)t->data)[i] = ggml_fp32_to_fp16(v);
            } else {
                ((float *)t->data)[i] = v;
            }
        }
        ggml_set_name(t, name.c_str());
        gguf_add_tensor(gguf_, t);
    }

    void add_f16(const std::string & name, std::vector<int64_t> ne, float stddev) {
        const bool keep = f16_;
        f16_            = true;
        add(name, std::move(ne), 0.0f, stddev);
        f16_ = keep;
    }

    void write(const std::string & path) {
        if (!gguf_write_to_file(gguf_, path.c_str(), false)) {
            throw std::runtime_error("cannot write " + path);
        }
    }

  private:
    ggml_context * ctx_  = nullptr;
    gguf_context * gguf_ = nullptr;
    std::mt19937   rng_;
    bool           f16_;
};

void copy_tokenizer(gguf_context * dst, const std::string & vocab_path) {
    gguf_init_params gp{ true, nullptr };
    gguf_context *   src = gguf_init_from_file(vocab_path.c_str(), gp);
    if (src == nullptr) {
        throw std::runtime_error("cannot read the vocabulary " + vocab_path);
    }
    const int64_t n_kv = gguf_get_n_kv(src);
    for (int64_t i = 0; i < n_kv; ++i) {
        const std::string key = gguf_get_key(src, i);
        if (key.rfind("tokenizer.", 0) != 0 || key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.token_type" ||
            key == "tokenizer.chat_template") {
            continue;
        }
        if (key == "tokenizer.ggml.merges") {
            const size_t              n = gguf_get_arr_n(src, i);
            std::vector<const char *> v(n);
            for (size_t j = 0; j < n; ++j) {
                v[j] = gguf_get_arr_str(src, i, j);
            }
            gguf_set_arr_str(dst, key.c_str(), v.data(), n);
        } else if (gguf_get_kv_type(src, i) == GGUF_TYPE_STRING) {
            gguf_set_val_str(dst, key.c_str(), gguf_get_val_str(src, i));
        } else if (gguf_get_kv_type(src, i) == GGUF_TYPE_UINT32) {
            gguf_set_val_u32(dst, key.c_str(), gguf_get_val_u32(src, i));
        } else if (gguf_get_kv_type(src, i) == GGUF_TYPE_BOOL) {
            gguf_set_val_bool(dst, key.c_str(), gguf_get_val_bool(src, i));
        }
    }
    // Tokens and their types, with Qwen2.5-VL's added tokens in place of the padding entries.
    const int64_t             i_tok  = gguf_find_key(src, "tokenizer.ggml.tokens");
    const int64_t             i_type = gguf_find_key(src, "tokenizer.ggml.token_type");
    const size_t              n      = gguf_get_arr_n(src, i_tok);
    std::vector<const char *> tokens(n);
    std::vector<int32_t>      types(n);
    const auto *              src_types = (const int32_t *)gguf_get_arr_data(src, i_type);
    for (size_t j = 0; j < n; ++j) {
        tokens[j] = gguf_get_arr_str(src, i_tok, j);
        types[j]  = src_types[j];
    }
    for (const auto & a : k_added) {
        tokens[a.id] = a.text;
        types[a.id]  = a.type;
    }
    gguf_set_arr_str(dst, "tokenizer.ggml.tokens", tokens.data(), n);
    gguf_set_arr_data(dst, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), n);
    // As Qwen2.5-VL's own GGUF files: <|im_end|> ends a turn, <|endoftext|> pads, no BOS added.
    gguf_set_val_u32(dst, "tokenizer.ggml.eos_token_id", 151645);
    gguf_set_val_u32(dst, "tokenizer.ggml.padding_token_id", 151643);
    gguf_set_val_u32(dst, "tokenizer.ggml.bos_token_id", 151643);
    gguf_set_val_bool(dst, "tokenizer.ggml.add_bos_token", false);
    gguf_set_val_str(dst, "tokenizer.chat_template", k_chat_template);
    gguf_free(src);
}

void write_text_model(const options & o, const std::string & path) {
    const int     n_vocab  = 151936;
    const int     head_dim = o.n_embd / o.n_head;
    const int64_t n_kv     = (int64_t)head_dim * o.n_head_kv;
    // M-RoPE sections in Qwen2.5-VL's proportions (16:24:24 of 64 rotary pairs).
    const int half = head_dim / 2, s0 = half / 4, s1 = (half - s0) / 2, s2 = half - s0 - s1;

    const size_t mem = ((size_t)n_vocab * o.n_embd +
                        (size_t)o.n_layer * (4 * o.n_embd * o.n_embd + 3 * o.n_embd * o.n_ff) + (size_t)64 * o.n_embd) *
                           sizeof(float) +
                       (size_t)(o.n_layer * 16 + 8) * ggml_tensor_overhead() + (1 << 20);
    writer w(mem, o.seed, o.f16);
    auto * g = w.gguf();
    gguf_set_val_str(g, "general.architecture", "qwen2vl");
    gguf_set_val_str(g, "general.name", "dior-tiny-qwen2.5-vl");
    gguf_set_val_u32(g, "qwen2vl.context_length", (uint32_t)o.n_ctx);
    gguf_set_val_u32(g, "qwen2vl.embedding_length", (uint32_t)o.n_embd);
    gguf_set_val_u32(g, "qwen2vl.block_count", (uint32_t)o.n_layer);
    gguf_set_val_u32(g, "qwen2vl.feed_forward_length", (uint32_t)o.n_ff);
    gguf_set_val_u32(g, "qwen2vl.attention.head_count", (uint32_t)o.n_head);
    gguf_set_val_u32(g, "qwen2vl.attention.head_count_kv", (uint32_t)o.n_head_kv);
    gguf_set_val_f32(g, "qwen2vl.rope.freq_base", 1000000.0f);
    gguf_set_val_f32(g, "qwen2vl.attention.layer_norm_rms_epsilon", o.rms_eps);
    const int32_t sections[4] = { s0, s1, s2, 0 };
    gguf_set_arr_data(g, "qwen2vl.rope.dimension_sections", GGUF_TYPE_INT32, sections, 4);
    gguf_set_val_u32(g, "general.file_type", o.f16 ? 1 : 0);
    copy_tokenizer(g, o.vocab);

    const float s = 0.5f / std::sqrt((float)o.n_embd);
    w.add("token_embd.weight", { o.n_embd, n_vocab }, 0.0f, 1.0f);
    w.add("output_norm.weight", { o.n_embd }, 1.0f, 0.1f);
    for (int il = 0; il < o.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        w.add(p + "attn_norm.weight", { o.n_embd }, 1.0f, 0.1f);
        w.add(p + "attn_q.weight", { o.n_embd, o.n_embd }, 0.0f, s);
        w.add(p + "attn_q.bias", { o.n_embd }, 0.0f, 0.1f);
        w.add(p + "attn_k.weight", { o.n_embd, n_kv }, 0.0f, s);
        w.add(p + "attn_k.bias", { n_kv }, 0.0f, 0.1f);
        w.add(p + "attn_v.weight", { o.n_embd, n_kv }, 0.0f, s);
        w.add(p + "attn_v.bias", { n_kv }, 0.0f, 0.1f);
        w.add(p + "attn_output.weight", { o.n_embd, o.n_embd }, 0.0f, s);
        w.add(p + "ffn_norm.weight", { o.n_embd }, 1.0f, 0.1f);
        w.add(p + "ffn_gate.weight", { o.n_embd, o.n_ff }, 0.0f, s);
        w.add(p + "ffn_up.weight", { o.n_embd, o.n_ff }, 0.0f, s);
        w.add(p + "ffn_down.weight", { o.n_ff, o.n_embd }, 0.0f, 0.5f / std::sqrt((float)o.n_ff));
    }
    w.write(path);
}

void write_projector(const options & o, const std::string & path) {
    const int    merged = 4 * o.v_embd;
    const size_t mem =
        ((size_t)2 * 14 * 14 * 3 * o.v_embd + (size_t)o.v_layer * (4 * o.v_embd * o.v_embd + 3 * o.v_embd * o.v_ff) +
         (size_t)merged * merged + (size_t)merged * o.n_embd + 64 * (size_t)o.v_embd) *
            sizeof(float) +
        (size_t)(o.v_layer * 20 + 16) * ggml_tensor_overhead() + (1 << 20);
    writer w(mem, o.seed + 1, o.f16);
    auto * g = w.gguf();
    gguf_set_val_str(g, "general.architecture", "clip");
    gguf_set_val_str(g, "general.name", "dior-tiny-qwen2.5-vl mmproj");
    gguf_set_val_bool(g, "clip.has_vision_encoder", true);
    gguf_set_val_str(g, "clip.projector_type", "qwen2.5vl_merger");
    gguf_set_val_bool(g, "clip.use_silu", true);
    gguf_set_val_u32(g, "clip.vision.embedding_length", (uint32_t)o.v_embd);
    gguf_set_val_u32(g, "clip.vision.feed_forward_length", (uint32_t)o.v_ff);
    gguf_set_val_u32(g, "clip.vision.block_count", (uint32_t)o.v_layer);
    gguf_set_val_u32(g, "clip.vision.projection_dim", (uint32_t)o.n_embd);
    gguf_set_val_u32(g, "clip.vision.attention.head_count", (uint32_t)o.v_head);
    gguf_set_val_f32(g, "clip.vision.attention.layer_norm_epsilon", 1e-6f);
    gguf_set_val_u32(g, "clip.vision.image_size", 560);
    gguf_set_val_u32(g, "clip.vision.patch_size", 14);
    gguf_set_val_u32(g, "clip.vision.n_wa_pattern", (uint32_t)o.v_wa_pattern);
    const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    const float stdv[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    gguf_set_arr_data(g, "clip.vision.image_mean", GGUF_TYPE_FLOAT32, mean, 3);
    gguf_set_arr_data(g, "clip.vision.image_std", GGUF_TYPE_FLOAT32, stdv, 3);
    gguf_set_val_u32(g, "general.file_type", o.f16 ? 1 : 0);

    const float s = 0.5f / std::sqrt((float)o.v_embd);
    // Conv kernels (two temporal slices of Qwen's 3-D patch embedding), F16 as the converter writes them.
    w.add_f16("v.patch_embd.weight", { 14, 14, 3, o.v_embd }, 0.05f);
    w.add_f16("v.patch_embd.weight.1", { 14, 14, 3, o.v_embd }, 0.05f);
    for (int il = 0; il < o.v_layer; ++il) {
        const std::string p = "v.blk." + std::to_string(il) + ".";
        w.add(p + "ln1.weight", { o.v_embd }, 1.0f, 0.1f);
        w.add(p + "ln2.weight", { o.v_embd }, 1.0f, 0.1f);
        for (const char * qkv : { "attn_q", "attn_k", "attn_v", "attn_out" }) {
            w.add(p + qkv + ".weight", { o.v_embd, o.v_embd }, 0.0f, s);
            w.add(p + qkv + ".bias", { o.v_embd }, 0.0f, 0.1f);
        }
        w.add(p + "ffn_gate.weight", { o.v_embd, o.v_ff }, 0.0f, s);
        w.add(p + "ffn_gate.bias", { o.v_ff }, 0.0f, 0.1f);
        w.add(p + "ffn_up.weight", { o.v_embd, o.v_ff }, 0.0f, s);
        w.add(p + "ffn_up.bias", { o.v_ff }, 0.0f, 0.1f);
        w.add(p + "ffn_down.weight", { o.v_ff, o.v_embd }, 0.0f, 0.5f / std::sqrt((float)o.v_ff));
        w.add(p + "ffn_down.bias", { o.v_embd }, 0.0f, 0.1f);
    }
    w.add("v.post_ln.weight", { o.v_embd }, 1.0f, 0.1f);
    w.add("mm.0.weight", { merged, merged }, 0.0f, 0.5f / std::sqrt((float)merged));
    w.add("mm.0.bias", { merged }, 0.0f, 0.1f);
    w.add("mm.2.weight", { merged, o.n_embd }, 0.0f, 1.0f / std::sqrt((float)merged));
    w.add("mm.2.bias", { o.n_embd }, 0.0f, 0.1f);
    w.write(path);
}

}  // namespace

int main(int argc, char ** argv) {
    options  o;
    CLI::App app{ "Write a tiny random-weight Qwen2.5-VL model (text.gguf + mmproj.gguf) for tests" };
    app.add_option("-o,--out", o.out_dir, "output folder")->required();
    app.add_option("--vocab", o.vocab, "llama.cpp's models/ggml-vocab-qwen2.gguf")
        ->required()
        ->check(CLI::ExistingFile);
    app.add_option("--seed", o.seed, "random seed");
    app.add_flag("--f16", o.f16, "store weight matrices as F16 (default F32)");
    app.add_option("--rms-eps", o.rms_eps, "RMS-norm epsilon of the text model");
    app.add_option("--n-embd", o.n_embd, "text width");
    app.add_option("--n-layer", o.n_layer, "text decoder layers");
    app.add_option("--n-head", o.n_head, "attention heads");
    app.add_option("--n-head-kv", o.n_head_kv, "key/value heads");
    app.add_option("--n-ff", o.n_ff, "text FFN width");
    app.add_option("--v-embd", o.v_embd, "vision width");
    app.add_option("--v-layer", o.v_layer, "vision layers");
    app.add_option("--v-head", o.v_head, "vision heads");
    app.add_option("--v-ff", o.v_ff, "vision FFN width (must differ from --v-embd)");
    app.add_option("--v-wa-pattern", o.v_wa_pattern, "every n-th vision layer attends fully (others windowed)");
    CLI11_PARSE(app, argc, argv);
    if (o.v_ff == o.v_embd) {
        std::fprintf(stderr, "error: --v-ff must differ from --v-embd (llama.cpp swaps up/down when equal)\n");
        return 1;
    }
    if (o.n_embd % o.n_head != 0 || (o.n_embd / o.n_head) % 8 != 0) {
        std::fprintf(stderr, "error: the head size (n_embd / n_head) must be a multiple of 8\n");
        return 1;
    }
    try {
        std::filesystem::create_directories(o.out_dir);
        write_text_model(o, o.out_dir + "/text.gguf");
        write_projector(o, o.out_dir + "/mmproj.gguf");
    } catch (const std::exception & e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    std::printf("%s/text.gguf\n%s/mmproj.gguf\n", o.out_dir.c_str(), o.out_dir.c_str());
    return 0;
}
