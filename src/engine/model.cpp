// The DIOR engine on llama.cpp: load the model, tokenize the prompt, evaluate it, read vectors.
//
// A prompt for one image is evaluated in three passes:
//   prefix  every chunk before the last text chunk: system turn + user header + image tokens
//   words   the start of the last text chunk that every condition of the prompt type shares:
//           image-closing tokens + the instruction's words before the condition
//   own     the rest: the condition, the instruction's end, the assistant header (then, when
//           generating, the answer)
// With prefix reuse, prefix and words are evaluated once per image and each condition evaluates
// only its own tokens on top of them. Without, every condition evaluates all three passes from an
// empty cache. Both run the same batches over the same cache contents, so they give bit-identical
// vectors (see engine_test.cpp beside this file).
#include "dior.h"
#include "engine/capture.h"
#include "engine/families.h"
#include "ggml-backend.h"
#include "gguf.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"
#include "prompt/chat.h"
#include "prompt/utf8.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#ifndef DIOR_ENGINE_VERSION
#define DIOR_ENGINE_VERSION "llama.cpp (unknown build)"
#endif

namespace dior {
namespace {

bool g_verbose = false;

// mtmd's own upper limit of image tokens for Qwen2-VL models (clip.cpp: set_limit_image_tokens).
constexpr int k_mtmd_max_image_tokens = 4096;

void log_callback(ggml_log_level level, const char * text, void *) {
    if (g_verbose || level == GGML_LOG_LEVEL_ERROR) {
        std::fputs(text, stderr);
    }
}

bool has_gpu() {
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        const auto t = ggml_backend_dev_type(ggml_backend_dev_get(i));
        if (t == GGML_BACKEND_DEVICE_TYPE_GPU || t == GGML_BACKEND_DEVICE_TYPE_IGPU) {
            return true;
        }
    }
    return false;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void require_file(const std::string & path, const char * what) {
    std::error_code ec;
    if (path.empty()) {
        throw error(std::string("no ") + what + " given");
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw error(std::string(what) + " not found: " + path);
    }
}

// The projector type, patch size, image size and spatial merge size written in an mmproj file
// ("" / 0 if absent).
void read_projector(const std::string & path, std::string & type, int & patch_size, int & image_size, int & merge) {
    gguf_init_params gp{ true, nullptr };
    gguf_context *   g = gguf_init_from_file(path.c_str(), gp);
    if (!g) {
        return;
    }
    for (const char * key : { "clip.vision.projector_type", "clip.projector_type" }) {
        const int64_t id = gguf_find_key(g, key);
        if (id >= 0 && gguf_get_kv_type(g, id) == GGUF_TYPE_STRING) {
            type = gguf_get_val_str(g, id);
            break;
        }
    }
    const int64_t p = gguf_find_key(g, "clip.vision.patch_size");
    if (p >= 0 && gguf_get_kv_type(g, p) == GGUF_TYPE_UINT32) {
        patch_size = (int)gguf_get_val_u32(g, p);
    }
    const int64_t s = gguf_find_key(g, "clip.vision.image_size");
    if (s >= 0 && gguf_get_kv_type(g, s) == GGUF_TYPE_UINT32) {
        image_size = (int)gguf_get_val_u32(g, s);
    }
    const int64_t m = gguf_find_key(g, "clip.vision.spatial_merge_size");
    if (m >= 0 && gguf_get_kv_type(g, m) == GGUF_TYPE_UINT32) {
        merge = (int)gguf_get_val_u32(g, m);
    }
    gguf_free(g);
}

// A family's Hugging Face image resize, done by dior before mtmd sees the image: smart_resize
// (Qwen-VL, GLM-4.1V: sides multiples of `factor` = patch size x merge size, pixels within
// [min_pixels, max_pixels] as the published preprocessor_config.json files give them) or Pixtral's
// longest-edge rule. factor 0: mtmd's own preprocessing.
struct hf_resize {
    int     factor     = 0;
    int64_t min_pixels = 0;
    int64_t max_pixels = 0;
    bool    pillow     = false;  // Pillow's bicubic whatever --image-processor says (the slow processor
                                 // is the one AutoProcessor loads for the family)
    int longest_edge = 0;        // > 0: Pixtral's rule instead of smart_resize (see pixtral_size)
};

// PixtralImageProcessor.get_resize_output_image_size: both sides divided by the larger of
// side / longest_edge where that exceeds 1 (floored), then rounded up to multiples of factor.
void pixtral_size(int width, int height, int longest_edge, int factor, int & out_width, int & out_height) {
    const double ratio = std::max((double)height / longest_edge, (double)width / longest_edge);
    double       h = height, w = width;
    if (ratio > 1) {
        h = std::floor(h / ratio);
        w = std::floor(w / ratio);
    }
    out_height = (((int)h - 1) / factor + 1) * factor;
    out_width  = (((int)w - 1) / factor + 1) * factor;
}

hf_resize hf_resize_of(const std::string & projector, int patch_size, int image_size, int merge) {
    if (projector == "qwen2vl_merger" || projector == "qwen2.5vl_merger") {
        return { patch_size * 2, 56 * 56, 14 * 14 * 4 * 16384, false };  // min_pixels 3136, max_pixels 12845056
    }
    if (projector == "qwen3vl_merger") {  // size: shortest_edge 65536, longest_edge 16777216
        return { patch_size * 2, 65536, 16777216, false };
    }
    if (projector == "glm4v") {  // Glm4vImageProcessor: size 12544..9633792 over two temporal frames
        return { patch_size * 2, 12544 / 2, 9633792 / 2, true };
    }
    if (projector == "pixtral" && image_size > 0) {  // PixtralImageProcessor: longest_edge = the encoder's size
        return { patch_size * std::max(merge, 1), 0, 0, true, image_size };
    }
    return {};
}

std::string model_meta(const llama_model * m, const std::string & key) {
    char buf[256];
    return llama_model_meta_val_str(m, key.c_str(), buf, sizeof(buf)) > 0 ? std::string(buf) : std::string();
}

// Where a family's transformers implementation (the version the family table names) defines its
// hidden states differently from the others (see hidden_naming in capture.h).
hidden_naming hidden_naming_of(const llama_model * m) {
    hidden_naming     n;
    const std::string arch = model_meta(m, "general.architecture");
    if (arch == "qwen3vl" || arch == "qwen3vlmoe") {
        n.final_before_norm = true;
        n.n_deepstack       = std::atoi(model_meta(m, arch + ".n_deepstack_layers").c_str());
    }
    return n;
}

struct llama_model_deleter {
    void operator()(llama_model * m) const { llama_model_free(m); }
};

struct llama_context_deleter {
    void operator()(llama_context * c) const { llama_free(c); }
};

// The image-dependent part of a prompt: chunks of the prefix and the tokens that mtmd puts after
// the image (e.g. <|vision_end|>), which open the suffix.
struct prepared_image {
    std::string              source;  // the image's file, for messages
    mtmd::input_chunks_ptr   chunks;
    size_t                   n_prefix_chunks = 0;
    int64_t                  n_prefix_tokens = 0;
    std::vector<llama_token> image_close;
};

class model_impl final : public model {
  public:
    explicit model_impl(const model_params & p) : params_(p) {
        require_file(p.model_path, "model file");
        require_file(p.mmproj_path, "mmproj file");

        static std::once_flag once;
        std::call_once(once, [] { llama_backend_init(); });
        g_verbose = p.verbose;
        llama_log_set(log_callback, nullptr);
        mtmd_helper_log_set(log_callback, nullptr);

        const int n_threads = p.n_threads > 0 ? p.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());

        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers       = p.n_gpu_layers;
        model_.reset(llama_model_load_from_file(p.model_path.c_str(), mp));
        if (!model_) {
            throw error("cannot load model " + p.model_path +
                        ": not a GGUF text model llama.cpp can read (-v shows why). dior serves the vision-language "
                        "models of llama.cpp's mtmd; tested against transformers: " +
                        tested_families() + " (README, \"Model families\")");
        }
        if (llama_model_is_recurrent(model_.get()) || llama_model_is_hybrid(model_.get())) {
            // Their recurrent state cannot be cut back to the shared prefix (llama_memory_seq_rm fails),
            // so every condition after the first would start from the previous one's state.
            throw error(p.model_path +
                        " has recurrent layers (e.g. LFM2, Mamba): dior cannot evaluate DIOR prompts "
                        "with it faithfully yet; tested families: " +
                        tested_families());
        }
        vocab_   = llama_model_get_vocab(model_.get());
        n_embd_  = llama_model_n_embd(model_.get());
        n_layer_ = llama_model_n_layer(model_.get());
        capture_.set_naming(hidden_naming_of(model_.get()));

        // embed_many: image_batch images share the context, each condition of each image a
        // sequence. The context holds the longest prompt (n_ctx) or a budget per image, whichever
        // is more; a group of images takes what fits.
        on_gpu_ = p.n_gpu_layers != 0 && has_gpu();
        if (p.image_batch < 0 || p.image_batch > 256) {
            throw error("--image-batch " + std::to_string(p.image_batch) +
                        ": use a count of images from 1 to 256, or auto");
        }
        max_images_  = p.image_batch > 0 ? p.image_batch : auto_image_batch(p);
        decode_rows_ = std::max(p.n_batch, std::min(p.n_batch * max_images_, k_max_decode_rows));
        const int64_t cells =
            std::max<int64_t>(p.n_ctx, (int64_t)max_images_ * std::min<int64_t>(p.n_ctx, k_cells_per_image));
        // Up to 16 conditions per image in one group; every sequence reserves an output row of
        // logits (vocabulary-wide), so no more than that.
        n_seq_max_ =
            max_images_ > 1 ? std::min({ (int)llama_max_parallel_sequences(), decode_rows_, 16 * max_images_ }) : 1;

        llama_context_params cp = llama_context_default_params();
        cp.n_ctx                = (uint32_t)cells;
        cp.n_batch              = (uint32_t)decode_rows_;
        cp.n_ubatch             = (uint32_t)decode_rows_;  // one decode call = one micro-batch
        cp.n_seq_max            = (uint32_t)n_seq_max_;
        cp.kv_unified           = true;
        cp.n_threads            = n_threads;
        cp.n_threads_batch      = n_threads;
        cp.embeddings           = false;
        cp.flash_attn_type      = p.flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        cp.type_k               = p.kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
        cp.type_v               = p.kv_f16 ? GGML_TYPE_F16 : GGML_TYPE_F32;
        cp.cb_eval              = hidden_capture::callback;
        cp.cb_eval_user_data    = &capture_;
        cp.no_perf              = true;
        ctx_.reset(llama_init_from_model(model_.get(), cp));
        if (!ctx_) {
            throw error("cannot create a llama.cpp context for " + p.model_path + " (n_ctx " + std::to_string(p.n_ctx) +
                        "); try a smaller --ctx-size");
        }

        // Resize images as Hugging Face's image processor does before mtmd sees them; mtmd then
        // keeps them as they are (its token limits opened to 1..4096). Qwen-VL, GLM-4.1V:
        // smart_resize, then torch's or Pillow's bicubic; Pixtral / Mistral 3: the longest-edge
        // rule, Pillow's bicubic. Gemma 3: squashed to the encoder's square with Pillow's bilinear
        // (Gemma3ImageProcessor, the slow one, is what AutoProcessor loads for it; mtmd would
        // letterbox).
        std::string proj;
        int         patch = 0, image_size = 0, merge = 0;
        read_projector(p.mmproj_path, proj, patch, image_size, merge);
        if (p.processor != image_processor::mtmd && patch > 0) {
            hf_resize_ = hf_resize_of(proj, patch, image_size, merge);
        }
        if (p.processor != image_processor::mtmd && proj == "gemma3" && image_size > 0) {
            square_bilinear_ = image_size;
        }

        mtmd_context_params mcp = mtmd_context_params_default();
        if (hf_resize_.factor > 0) {  // images come at Hugging Face's size: mtmd keeps them
            mcp.image_min_tokens = 1;
            mcp.image_max_tokens = k_mtmd_max_image_tokens;
        }
        mcp.use_gpu         = p.n_gpu_layers != 0;
        mcp.n_threads       = n_threads;
        mcp.print_timings   = false;
        mcp.warmup          = false;
        mcp.flash_attn_type = p.vision_flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
        mtmd_.reset(mtmd_init_from_file(p.mmproj_path.c_str(), model_.get(), mcp));
        if (!mtmd_) {
            throw error("cannot load projector " + p.mmproj_path +
                        ": not an mmproj GGUF that matches the text model, or a projector llama.cpp's mtmd does not "
                        "support (-v shows why); tested families: " +
                        tested_families());
        }
        if (tested_family(proj).empty()) {
            std::fprintf(stderr,
                         "dior: note: %s has projector type '%s', a family outside dior's parity suite (%s): its "
                         "vectors are not checked against transformers\n",
                         p.mmproj_path.c_str(), proj.c_str(), tested_families().c_str());
        }
        if (!mtmd_support_vision(mtmd_.get())) {
            throw error(p.mmproj_path + " has no vision encoder; DIOR needs an image projector");
        }
        image_pad_ = image_pad_id();
        marker_    = mtmd_default_marker();
        layout_    = make_chat_layout(model_.get(), proj, marker_);
        split_tail();
    }

    int n_embd() const override { return n_embd_; }

    int n_layer() const override { return n_layer_; }

    std::string name() const override {
        char buf[256];
        if (llama_model_meta_val_str(model_.get(), "general.name", buf, sizeof(buf)) > 0) {
            return buf;
        }
        return std::filesystem::path(params_.model_path).stem().string();
    }

    std::vector<int> resolve_layers(const std::vector<int> & layers) const override {
        std::vector<int> out;
        for (int l : layers) {
            const int r = l < 0 ? n_layer_ + 1 + l : l;
            if (r < 0 || r > n_layer_) {
                throw error("layer " + std::to_string(l) + " is out of range: this model has hidden states 0.." +
                            std::to_string(n_layer_) + " (or -1..-" + std::to_string(n_layer_ + 1) + ")");
            }
            out.push_back(r);
        }
        return out;
    }

    std::vector<int> all_layers() const override {
        std::vector<int> out;
        for (int l = 0; l <= n_layer_; ++l) {
            out.push_back(l);
        }
        return out;
    }

    std::string render_prompt(const std::string & instr) const override {
        return layout_.head + marker_ + layout_.text_prefix + instr + layout_.tail;
    }

    std::vector<int32_t> prompt_tokens(const image & img, const std::string & instr, bool parse_special) override {
        prepared_image pi = prepare(img);
        return prompt_ids(pi, suffix_tokens(pi, instr, parse_special));
    }

    std::vector<condition_vectors> embed(const image & img, const std::vector<std::optional<std::string>> & conditions,
                                         const embed_params & ep) override {
        const auto t_start            = std::chrono::steady_clock::now();
        timings_                      = {};
        const std::vector<int> layers = resolve_layers(ep.layers);
        capture_.set_layers(n_layer_, n_embd_, layers);

        prepared_image pi = prepare(img);

        const bool gen              = ep.generate || ep.source != embed_source::input_last;
        logits_read_                = gen;  // only generation reads logits; otherwise the output projection is skipped
        const std::vector<job> jobs = make_jobs(pi, img.source, conditions, ep);

        // Tokens of the prefix that some condition wants (e.g. --token 5): captured in the prefix pass.
        std::vector<int64_t> prefix_wanted;
        for (const auto & j : jobs) {
            if (j.token < pi.n_prefix_tokens) {
                prefix_wanted.push_back(j.token);
            }
        }
        std::sort(prefix_wanted.begin(), prefix_wanted.end());
        prefix_wanted.erase(std::unique(prefix_wanted.begin(), prefix_wanted.end()), prefix_wanted.end());

        std::vector<condition_vectors> out;
        // encoder output of each image chunk (an image can be several tiles), kept across
        // conditions with reuse
        std::vector<std::vector<float>> image_embd;
        llama_pos                       pos_after_prefix = 0;
        // The KV cache holds the prefix, then `shared` (the template's words of the conditions
        // evaluated last), then that condition's own tokens. Each condition evaluates, in this order
        // and as separate passes, prefix, template words and its own tokens, with reuse or without:
        // so both give the same vectors, and a condition's vector does not depend on the others.
        std::vector<llama_token> shared;
        bool                     have_shared = false;
        for (size_t c = 0; c < jobs.size(); ++c) {
            const job &                    j = jobs[c];
            const std::vector<llama_token> words(j.suffix.begin(), j.suffix.begin() + (std::ptrdiff_t)j.split);
            if (c == 0 || !ep.reuse_prefix) {
                llama_memory_clear(llama_get_memory(ctx_.get()), true);
                if (!ep.reuse_prefix) {
                    image_embd.clear();
                }
                pos_after_prefix = eval_prefix(pi, ep.position, prefix_wanted, image_embd);
                have_shared      = false;
            }
            const llama_pos pos_after_words = pos_after_prefix + (llama_pos)words.size();
            if (!have_shared || shared != words) {
                cut_back(pos_after_prefix);
                // Tokens among these words that a condition with the same words wants (--token k).
                std::vector<int64_t> w;
                for (const job & o : jobs) {
                    if (o.token >= pi.n_prefix_tokens && o.token < pi.n_prefix_tokens + (int64_t)words.size() &&
                        o.split == j.split && std::equal(words.begin(), words.end(), o.suffix.begin())) {
                        w.push_back(o.token);
                    }
                }
                std::sort(w.begin(), w.end());
                w.erase(std::unique(w.begin(), w.end()), w.end());
                const auto t0  = std::chrono::steady_clock::now();
                llama_pos  pos = pos_after_prefix;
                eval_text(words, pi.n_prefix_tokens, pos, w);
                timings_.prefix_ms += ms_since(t0);
                shared      = words;
                have_shared = true;
            } else {
                cut_back(pos_after_words);
            }
            const auto           t0 = std::chrono::steady_clock::now();
            std::vector<int64_t> wanted;
            const int64_t        own_first = pi.n_prefix_tokens + (int64_t)j.split;
            if (j.token >= own_first) {
                wanted.push_back(j.token);
            }
            const int64_t n_prompt = pi.n_prefix_tokens + (int64_t)j.suffix.size();
            if (gen && (wanted.empty() || wanted.back() != n_prompt - 1)) {
                wanted.push_back(n_prompt - 1);  // its logits start the generation
            }
            llama_pos pos = pos_after_words;
            eval_text(std::vector<llama_token>(j.suffix.begin() + (std::ptrdiff_t)j.split, j.suffix.end()), own_first,
                      pos, wanted);
            timings_.suffix_ms.push_back(ms_since(t0));

            condition_vectors cv;
            cv.condition   = conditions[c];
            cv.instruction = instruction(ep.prompt, conditions[c]);
            cv.n_tokens    = (int)n_prompt;
            if (gen) {
                const auto t1 = std::chrono::steady_clock::now();
                generate(prompt_ids(pi, j.suffix), pos, ep, cv);
                timings_.generate_ms += ms_since(t1);
                timings_.n_generated += (int)cv.generated.size();
            }
            for (int l : layers) {
                if (ep.source == embed_source::input_last) {
                    cv.vectors.push_back(capture_.get(j.token, l));
                    continue;
                }
                // first_output: the first generated token; mean_output: all of them, each at the
                // position it was fed at.
                const size_t        n = ep.source == embed_source::first_output ? 1 : cv.generated.size();
                std::vector<double> sum(n_embd_, 0.0);
                for (size_t i = 0; i < n; ++i) {
                    const auto & v = capture_.get(n_prompt + (int64_t)i, l);
                    for (int k = 0; k < n_embd_; ++k) {
                        sum[k] += v[k];
                    }
                }
                std::vector<float> mean(n_embd_);
                for (int k = 0; k < n_embd_; ++k) {
                    mean[k] = (float)(sum[k] / (double)n);
                }
                cv.vectors.push_back(std::move(mean));
            }
            out.push_back(std::move(cv));
        }
        timings_.total_ms    = ms_since(t_start);
        timings_.most_images = 1;
        return out;
    }

    std::vector<std::vector<condition_vectors>> embed_many(const std::vector<image> &                      imgs,
                                                           const std::vector<std::optional<std::string>> & conditions,
                                                           const embed_params & ep) override {
        std::vector<std::vector<condition_vectors>> out(imgs.size());
        timings                                     all{};
        const auto                                  one = [&](size_t i) {
            out[i] = embed(imgs[i], conditions, ep);
            add_timings(all, timings_);
        };
        const bool gen = ep.generate || ep.source != embed_source::input_last;
        // Generation and prompts without prefix reuse go one image at a time.
        if (imgs.size() < 2 || max_images_ < 2 || gen || !ep.reuse_prefix || conditions.empty()) {
            for (size_t i = 0; i < imgs.size(); ++i) {
                one(i);
            }
            timings_ = all;
            return out;
        }
        const auto             t_start = std::chrono::steady_clock::now();
        const std::vector<int> layers  = resolve_layers(ep.layers);

        std::vector<prepared_image>   pis;
        std::vector<std::vector<job>> jobs;
        for (const image & img : imgs) {
            pis.push_back(prepare(img));
            jobs.push_back(make_jobs(pis.back(), img.source, conditions, ep));
        }
        // Groups of consecutive images that fit the context's sequences and KV cells.
        const size_t  K        = conditions.size();
        const size_t  max_seqs = std::max<size_t>(1, n_seq_max_ / K);
        const int64_t max_used = (int64_t)llama_n_ctx(ctx_.get()) - k_ctx_margin;
        const auto    cells    = [&](size_t i) {
            int64_t n = pis[i].n_prefix_tokens;
            for (const job & j : jobs[i]) {
                n += (int64_t)j.suffix.size();
            }
            return n;
        };
        for (size_t first = 0; first < imgs.size();) {
            size_t  n    = 1;
            int64_t used = cells(first);
            while (first + n < imgs.size() && n < (size_t)max_images_ && n < max_seqs &&
                   used + cells(first + n) <= max_used && same_layout(pis[first], pis[first + n])) {
                used += cells(first + n);
                ++n;
            }
            if (n == 1) {
                one(first);
            } else {
                capture_.set_layers(n_layer_, n_embd_, layers);
                logits_read_ = false;
                embed_group(pis, jobs, first, n, conditions, ep, layers, out, all);
            }
            first += n;
        }
        timings_          = all;
        timings_.total_ms = ms_since(t_start);
        return out;
    }

    const timings & last_timings() const override { return timings_; }

    int image_batch() const override { return max_images_; }

  private:
    // One condition's prompt for a prepared image: its suffix tokens, the token whose vector is
    // read and where the template's shared words end.
    struct job {
        std::vector<llama_token> suffix;
        int64_t                  token = 0;  // absolute index of the embedded token
        size_t                   split = 0;  // suffix[0, split): the template's words before the condition
    };

    std::vector<job> make_jobs(const prepared_image & pi, const std::string & source,
                               const std::vector<std::optional<std::string>> & conditions,
                               const embed_params &                            ep) const {
        const bool gen = ep.generate || ep.source != embed_source::input_last;
        if (gen && ep.generation.max_new_tokens < 1) {
            throw error("generation needs max_new_tokens >= 1 (got " + std::to_string(ep.generation.max_new_tokens) +
                        ")");
        }
        const int64_t n_new = gen ? ep.generation.max_new_tokens : 0;

        std::vector<std::vector<llama_token>> probes;  // see template_split
        for (const char * probe : { "\x01", "\x02" }) {
            probes.push_back(suffix_tokens(pi, instruction(ep.prompt, std::string(probe)), false));
        }
        std::vector<job> jobs;
        for (const auto & cond : conditions) {
            job j;
            j.suffix            = suffix_tokens(pi, instruction(ep.prompt, cond), ep.parse_special);
            const int64_t total = pi.n_prefix_tokens + (int64_t)j.suffix.size();
            if (total + n_new > params_.n_ctx) {
                throw error(source + ": the prompt has " + std::to_string(total) + " tokens" +
                            (n_new ? " (+ " + std::to_string(n_new) + " to generate)" : std::string()) +
                            ", more than the context (--ctx-size " + std::to_string(params_.n_ctx) +
                            "); use --ctx-size " + std::to_string(total + n_new) +
                            " or more, or a smaller --image-max-size");
            }
            // Generating reads the last prompt token's logits; input_last reads its chosen token.
            j.token = ep.source != embed_source::input_last ? total - 1
                      : ep.token < 0                        ? total + ep.token  // from the end, as in Python
                                                            : ep.token;
            if (j.token < 0 || j.token >= total) {
                throw error("token " + std::to_string(ep.token) + " is outside the prompt (" + std::to_string(total) +
                            " tokens)");
            }
            j.split = template_split(probes, j.suffix);
            jobs.push_back(std::move(j));
        }
        return jobs;
    }

    // --- several images at once ------------------------------------------------------------
    //
    // embed_many() runs, for a group of images, the passes that embed() runs for one: prefix,
    // template words, each condition's own tokens. Image b's condition c is sequence b*K + c of one
    // KV cache; a token that several sequences share (the system turn, an image, a condition
    // group's words) is evaluated once with all their sequence ids. Each pass has the same tokens,
    // positions and rows as in embed(), and passes of different images go through the same
    // decodes: so the vectors agree with one image at a time to the rounding of attention sums.

    // ggml-blas takes a matrix product when it has at least this many rows; below, ggml-cpu's
    // kernels round the activations to F16 first. On a CPU, passes share a decode only when each
    // would have taken the same kernel alone.
    static constexpr int k_blas_rows = 32;
    // KV cells kept free of a group's estimate (llama.cpp pads what it uses).
    static constexpr int64_t k_ctx_margin = 256;
    // Context budget per image of a group (a 700 px image with five conditions takes ~700) and
    // rows per decode: the attention scores of one decode take rows x cells x heads floats.
    static constexpr int64_t k_cells_per_image = 1024;
    static constexpr int     k_max_decode_rows = 4096;
    // Images per pass of the vision encoder (its graph grows with each: attention per image).
    static constexpr size_t k_max_images_per_encode = 32;

    // --image-batch 0: one image at a time on a CPU (batching buys nothing there: the products
    // already run near the machine's GEMM rate); on a GPU 16, fewer when a fifth of its free
    // memory does not hold their KV cache.
    int auto_image_batch(const model_params & p) const {
        if (!on_gpu_) {
            return 1;
        }
        size_t free = 0, total = 0;
        for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
            ggml_backend_dev_t d = ggml_backend_dev_get(i);
            if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) {
                ggml_backend_dev_memory(d, &free, &total);
                break;
            }
        }
        const int64_t head_dim = n_embd_ / std::max(1, llama_model_n_head(model_.get()));
        const int64_t per_cell =
            (int64_t)n_layer_ * 2 * llama_model_n_head_kv(model_.get()) * head_dim * (p.kv_f16 ? 2 : 4);
        const int64_t per_image = per_cell * std::min<int64_t>(p.n_ctx, k_cells_per_image);
        return (int)std::clamp<int64_t>(free > 0 ? (int64_t)(free / 5) / std::max<int64_t>(per_image, 1) : 16, 1, 16);
    }

    struct pass {
        std::vector<llama_token>             toks;            // text tokens, or
        const float *                        embd = nullptr;  // n rows of image embeddings
        int                                  n    = 0;
        int                                  n_pp = 1;  // position values per row
        std::vector<llama_pos>               pos;       // [n_pp][n]
        std::vector<llama_seq_id>            seqs;      // every row belongs to all of these
        std::vector<std::pair<int, int64_t>> wanted;    // {row, capture key}
    };

    static void add_timings(timings & to, const timings & t) {
        to.encode_ms += t.encode_ms;
        to.prefix_ms += t.prefix_ms;
        to.suffix_ms.insert(to.suffix_ms.end(), t.suffix_ms.begin(), t.suffix_ms.end());
        to.generate_ms += t.generate_ms;
        to.n_generated += t.n_generated;
        to.most_images = std::max(to.most_images, t.most_images);
        to.total_ms += t.total_ms;
    }

    // Whether two prepared images can share decodes: the same chunks before and after the image
    // (the same text before it: it is evaluated once for both), an image that attends causally.
    bool same_layout(const prepared_image & a, const prepared_image & b) const {
        if (a.n_prefix_chunks != b.n_prefix_chunks || a.image_close != b.image_close) {
            return false;
        }
        bool before_image = true;
        for (size_t i = 0; i < a.n_prefix_chunks; ++i) {
            const mtmd_input_chunk * ca = mtmd_input_chunks_get(a.chunks.get(), i);
            const mtmd_input_chunk * cb = mtmd_input_chunks_get(b.chunks.get(), i);
            const auto               ta = mtmd_input_chunk_get_type(ca);
            if (ta != mtmd_input_chunk_get_type(cb)) {
                return false;
            }
            if (ta == MTMD_INPUT_CHUNK_TYPE_TEXT && before_image && chunk_tokens(ca) != chunk_tokens(cb)) {
                return false;
            }
            before_image = before_image && ta == MTMD_INPUT_CHUNK_TYPE_TEXT;
            if (ta != MTMD_INPUT_CHUNK_TYPE_TEXT &&
                (ta != MTMD_INPUT_CHUNK_TYPE_IMAGE || mtmd_decode_use_non_causal(mtmd_.get(), ca) ||
                 mtmd_decode_use_non_causal(mtmd_.get(), cb))) {
                return false;
            }
        }
        return true;
    }

    static std::vector<llama_token> chunk_tokens(const mtmd_input_chunk * c) {
        size_t              n = 0;
        const llama_token * t = mtmd_input_chunk_get_tokens_text(c, &n);
        return std::vector<llama_token>(t, t + n);
    }

    void embed_group(const std::vector<prepared_image> & pis, const std::vector<std::vector<job>> & jobs, size_t first,
                     size_t n, const std::vector<std::optional<std::string>> & conditions, const embed_params & ep,
                     const std::vector<int> & layers, std::vector<std::vector<condition_vectors>> & out, timings & t) {
        llama_memory_clear(llama_get_memory(ctx_.get()), true);
        capture_.clear();
        t.most_images      = std::max(t.most_images, (int)n);
        const size_t K     = conditions.size();
        const bool   mrope = mtmd_decode_use_mrope(mtmd_.get());
        const int    n_inp = llama_model_n_embd_inp(model_.get());

        // Where each sequence's vector is captured: one key space per pass.
        std::vector<int64_t> key_of(n * K, -1);
        int64_t              space = 0;
        const auto           want  = [&](pass & ps, int64_t tok0) {
            ++space;
            for (llama_seq_id s : ps.seqs) {
                const int64_t tok = jobs[first + (size_t)s / K][(size_t)s % K].token;
                if (tok < tok0 || tok >= tok0 + ps.n) {
                    continue;
                }
                const int64_t key = (space << 32) | tok;
                if (std::find_if(ps.wanted.begin(), ps.wanted.end(), [&](const auto & w) { return w.second == key; }) ==
                    ps.wanted.end()) {
                    ps.wanted.emplace_back((int)(tok - tok0), key);
                    if (ps.embd && capture_.wants_layer(0)) {  // see eval_image
                        const float * row = ps.embd + (size_t)(tok - tok0) * n_inp;
                        capture_.put(key, 0, std::vector<float>(row, row + n_embd_));
                    }
                }
                key_of[s] = key;
            }
            std::sort(ps.wanted.begin(), ps.wanted.end());
        };
        const auto seqs_of = [&](size_t b) {
            std::vector<llama_seq_id> s;
            for (size_t c = 0; c < K; ++c) {
                s.push_back((llama_seq_id)(b * K + c));
            }
            return s;
        };
        const auto text_pass = [&](std::vector<llama_token> toks, llama_pos pos0, std::vector<llama_seq_id> seqs,
                                   int64_t tok0) {
            pass ps;
            ps.toks = std::move(toks);
            ps.n    = (int)ps.toks.size();
            for (int i = 0; i < ps.n; ++i) {
                ps.pos.push_back(pos0 + i);
            }
            ps.seqs = std::move(seqs);
            want(ps, tok0);
            return ps;
        };

        // The prefix: text before the image is the same for every image (one pass for all),
        // then each image, then any text between the image and the suffix.
        std::vector<llama_pos>          pos(n, 0);
        std::vector<int64_t>            tok(n, 0);
        std::vector<std::vector<float>> embd(n);
        bool                            shared = true;
        for (size_t ci = 0; ci < pis[first].n_prefix_chunks; ++ci) {
            const mtmd_input_chunk * c0 = mtmd_input_chunks_get(pis[first].chunks.get(), ci);
            std::vector<pass>        passes;
            if (mtmd_input_chunk_get_type(c0) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                for (size_t b = 0; b < n && (b == 0 || !shared); ++b) {
                    const auto toks = chunk_tokens(mtmd_input_chunks_get(pis[first + b].chunks.get(), ci));
                    std::vector<llama_seq_id> seqs;
                    for (size_t o = shared ? 0 : b; o < (shared ? n : b + 1); ++o) {
                        const auto s = seqs_of(o);
                        seqs.insert(seqs.end(), s.begin(), s.end());
                    }
                    passes.push_back(text_pass(toks, pos[b], std::move(seqs), tok[b]));
                }
                const auto t0 = std::chrono::steady_clock::now();
                run_passes(passes);
                t.prefix_ms += ms_since(t0);
                const int nt = passes[0].n;
                for (size_t b = 0; b < n; ++b) {
                    pos[b] += nt;
                    tok[b] += nt;
                }
                continue;
            }
            shared = false;
            std::vector<const mtmd_input_chunk *> chunks;
            for (size_t b = 0; b < n; ++b) {
                chunks.push_back(mtmd_input_chunks_get(pis[first + b].chunks.get(), ci));
            }
            const auto t_enc = std::chrono::steady_clock::now();
            encode_images(pis, first, chunks, embd);
            t.encode_ms += ms_since(t_enc);
            for (size_t b = 0; b < n; ++b) {
                const mtmd_input_chunk * chunk = chunks[b];
                const int                nt    = (int)mtmd_input_chunk_get_n_tokens(chunk);
                pass                     ps;
                ps.embd = embd[b].data();
                ps.n    = nt;
                ps.n_pp = mrope ? 4 : 1;
                ps.pos  = image_positions(chunk, pos[b], ep.position);
                ps.seqs = seqs_of(b);
                want(ps, tok[b]);
                passes.push_back(std::move(ps));
                pos[b] += (ep.position == positions::native && mrope) ? mtmd_input_chunk_get_n_pos(chunk) : nt;
                tok[b] += nt;
            }
            const auto t0 = std::chrono::steady_clock::now();
            run_passes(passes);
            t.prefix_ms += ms_since(t0);
        }

        // The template's words: once per run of conditions that share them, on each image.
        std::vector<pass> words;
        for (size_t b = 0; b < n; ++b) {
            for (size_t c = 0; c < K;) {
                const std::vector<job> &       js = jobs[first + b];
                const std::vector<llama_token> w(js[c].suffix.begin(),
                                                 js[c].suffix.begin() + (std::ptrdiff_t)js[c].split);
                std::vector<llama_seq_id>      seqs;
                size_t                         e = c;
                while (e < K && js[e].split == js[c].split && std::equal(w.begin(), w.end(), js[e].suffix.begin())) {
                    seqs.push_back((llama_seq_id)(b * K + e));
                    ++e;
                }
                if (!w.empty()) {
                    words.push_back(text_pass(w, pos[b], std::move(seqs), tok[b]));
                }
                c = e;
            }
        }
        auto t0 = std::chrono::steady_clock::now();
        run_passes(words);
        t.prefix_ms += ms_since(t0);

        // Each condition's own tokens.
        std::vector<pass> own;
        for (size_t b = 0; b < n; ++b) {
            for (size_t c = 0; c < K; ++c) {
                const job & j = jobs[first + b][c];
                own.push_back(
                    text_pass(std::vector<llama_token>(j.suffix.begin() + (std::ptrdiff_t)j.split, j.suffix.end()),
                              pos[b] + (llama_pos)j.split, { (llama_seq_id)(b * K + c) }, tok[b] + (int64_t)j.split));
            }
        }
        t0 = std::chrono::steady_clock::now();
        run_passes(own);
        const double own_ms = ms_since(t0);

        for (size_t b = 0; b < n; ++b) {
            std::vector<condition_vectors> cvs;
            for (size_t c = 0; c < K; ++c) {
                condition_vectors cv;
                cv.condition   = conditions[c];
                cv.instruction = instruction(ep.prompt, conditions[c]);
                cv.n_tokens    = (int)(pis[first + b].n_prefix_tokens + (int64_t)jobs[first + b][c].suffix.size());
                for (int l : layers) {
                    cv.vectors.push_back(capture_.get(key_of[b * K + c], l));
                }
                cvs.push_back(std::move(cv));
                t.suffix_ms.push_back(own_ms / (double)(n * K));
            }
            out[first + b] = std::move(cvs);
        }
    }

    // The vision encoder over image chunks of a group: several images in one pass where the
    // projector can (on a CPU only those with k_blas_rows output tokens or more, each of whose
    // products meets the same kernel as alone), one at a time otherwise. embd[b]: chunk b's rows.
    void encode_images(const std::vector<prepared_image> & pis, size_t first,
                       const std::vector<const mtmd_input_chunk *> & chunks, std::vector<std::vector<float>> & embd) {
        const size_t        n_inp = (size_t)llama_model_n_embd_inp(model_.get());
        std::vector<size_t> together, alone;
        for (size_t b = 0; b < chunks.size(); ++b) {
            const bool big = mtmd_input_chunk_get_n_tokens(chunks[b]) >= (size_t)k_blas_rows;
            (mtmd_supports_image_list(mtmd_.get()) && (on_gpu_ || big) ? together : alone).push_back(b);
        }
        if (together.size() == 1) {
            alone.push_back(together[0]);
            together.clear();
        }
        for (size_t at = 0; at < together.size(); at += k_max_images_per_encode) {
            std::vector<const mtmd_input_chunk *> part;
            for (size_t k = at; k < std::min(together.size(), at + k_max_images_per_encode); ++k) {
                part.push_back(chunks[together[k]]);
            }
            if (mtmd_encode_chunks(mtmd_.get(), part.data(), part.size()) != 0) {
                // one at a time, so that the image at fault is named
                alone.insert(
                    alone.end(), together.begin() + (std::ptrdiff_t)at,
                    together.begin() + (std::ptrdiff_t)std::min(together.size(), at + k_max_images_per_encode));
                continue;
            }
            const float * e = mtmd_get_output_embd(mtmd_.get());
            for (size_t k = at; k < std::min(together.size(), at + k_max_images_per_encode); ++k) {
                const size_t rows = mtmd_input_chunk_get_n_tokens(chunks[together[k]]);
                embd[together[k]].assign(e, e + rows * n_inp);
                e += rows * n_inp;
            }
        }
        for (size_t b : alone) {
            if (mtmd_encode_chunk(mtmd_.get(), chunks[b]) != 0) {
                throw error(prepared_source(pis, first + b) + "the vision encoder failed on this image");
            }
            const float * e = mtmd_get_output_embd(mtmd_.get());
            embd[b].assign(e, e + mtmd_input_chunk_get_n_tokens(chunks[b]) * n_inp);
        }
    }

    static std::string prepared_source(const std::vector<prepared_image> & pis, size_t i) {
        return pis[i].source.empty() ? std::string() : pis[i].source + ": ";
    }

    // Positions of an image's tokens from `pos`, [n_pp][n] (see eval_image).
    std::vector<llama_pos> image_positions(const mtmd_input_chunk * chunk, llama_pos pos, positions mode) const {
        const int                 n     = (int)mtmd_input_chunk_get_n_tokens(chunk);
        const bool                mrope = mtmd_decode_use_mrope(mtmd_.get());
        const mtmd_image_tokens * itoks = mtmd_input_chunk_get_tokens_image(chunk);
        std::vector<llama_pos>    p((size_t)n * (mrope ? 4 : 1), 0);
        for (int k = 0; k < n; ++k) {
            if (!mrope) {
                p[k] = pos + k;
            } else if (mode == positions::sequential || itoks == nullptr) {
                p[k] = p[n + k] = p[2 * n + k] = pos + k;
            } else {
                const mtmd_decoder_pos d = mtmd_image_tokens_get_decoder_pos(itoks, pos, (size_t)k);
                p[k]                     = (llama_pos)d.t;
                p[n + k]                 = (llama_pos)d.y;
                p[2 * n + k]             = (llama_pos)d.x;
                p[3 * n + k]             = (llama_pos)d.z;
            }
        }
        return p;
    }

    // Evaluates passes that do not depend on each other: each cut into pieces of n_batch rows as
    // embed() cuts it, the i-th pieces of all passes decoded together, as many per decode as the
    // context takes (on a CPU, see k_blas_rows).
    void run_passes(const std::vector<pass> & passes) {
        const int nb = params_.n_batch;
        for (int off = 0;; off += nb) {
            std::vector<std::pair<const pass *, int>> pieces;  // {pass, its first row}
            for (const pass & ps : passes) {
                if (ps.n > off) {
                    pieces.emplace_back(&ps, off);
                }
            }
            if (pieces.empty()) {
                return;
            }
            // On a CPU, pieces of k_blas_rows rows or more go together, and smaller ones together
            // while they stay under it: every piece meets the kernel it meets alone.
            std::vector<std::pair<const pass *, int>> group;
            int                                       total = 0;
            for (int big = 1; big >= 0; --big) {
                for (const auto & p : pieces) {
                    const int r = std::min(nb, p.first->n - p.second);
                    if (!on_gpu_ && (r >= k_blas_rows) != (big == 1)) {
                        continue;
                    }
                    if (on_gpu_ && big == 0) {
                        break;
                    }
                    const int limit = on_gpu_ || big == 1 ? decode_rows_ : k_blas_rows - 1;
                    if (!group.empty() && total + r > limit) {
                        decode_pieces(group);
                        group.clear();
                        total = 0;
                    }
                    group.push_back(p);
                    total += r;
                }
                if (!group.empty()) {
                    decode_pieces(group);
                    group.clear();
                    total = 0;
                }
            }
        }
    }

    // One llama_decode of pieces of passes (all text or all image embeddings).
    void decode_pieces(const std::vector<std::pair<const pass *, int>> & pieces) {
        const int  nb      = params_.n_batch;
        const bool is_embd = pieces[0].first->embd != nullptr;
        const int  n_pp    = pieces[0].first->n_pp;
        const int  n_inp   = llama_model_n_embd_inp(model_.get());
        int        n       = 0;
        for (const auto & [ps, off] : pieces) {
            n += std::min(nb, ps->n - off);
        }
        std::vector<llama_token>             toks;
        std::vector<float>                   embd;
        std::vector<llama_pos>               pos((size_t)n * (is_embd ? n_pp : 1));
        std::vector<int32_t>                 n_seq;
        std::vector<llama_seq_id *>          seq;
        std::vector<int8_t>                  logits;
        std::vector<std::pair<int, int64_t>> wanted;
        int                                  row = 0;
        for (const auto & [ps, off] : pieces) {
            const int r = std::min(nb, ps->n - off);
            if (is_embd) {
                embd.insert(embd.end(), ps->embd + (size_t)off * n_inp, ps->embd + (size_t)(off + r) * n_inp);
            } else {
                toks.insert(toks.end(), ps->toks.begin() + off, ps->toks.begin() + off + r);
            }
            const int pp = is_embd ? n_pp : 1;
            for (int k = 0; k < pp; ++k) {
                for (int i = 0; i < r; ++i) {
                    pos[(size_t)k * n + row + i] = ps->pos[(size_t)k * ps->n + off + i];
                }
            }
            for (int i = 0; i < r; ++i) {
                n_seq.push_back((int32_t)ps->seqs.size());
                seq.push_back(const_cast<llama_seq_id *>(ps->seqs.data()));
                logits.push_back(0);
            }
            for (const auto & [w, key] : ps->wanted) {
                if (w >= off && w < off + r) {
                    wanted.emplace_back(row + w - off, key);
                    logits[(size_t)(row + w - off)] = 1;
                }
            }
            row += r;
        }
        seq.push_back(nullptr);
        llama_batch batch{};
        batch.n_tokens = n;
        batch.token    = is_embd ? nullptr : toks.data();
        batch.embd     = is_embd ? embd.data() : nullptr;
        batch.pos      = pos.data();
        batch.n_seq_id = n_seq.data();
        batch.seq_id   = seq.data();
        batch.logits   = logits.data();
        capture_.begin_rows(n, std::move(wanted), false);
        run_decode(batch, " on a batch of images", "lower --image-batch or raise --ctx-size");
    }

    // --- tokenization ----------------------------------------------------------------------

    std::vector<llama_token> tokenize(const std::string & text, bool parse_special) const {
        std::vector<llama_token> toks(text.size() + 8);
        int32_t n = llama_tokenize(vocab_, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), false,
                                   parse_special);
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(vocab_, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), false,
                               parse_special);
        }
        if (n < 0) {
            throw error("cannot tokenize prompt text");
        }
        toks.resize(n);
        return toks;
    }

    // The template tail may start with plain text before its first control token (not so for
    // ChatML). That text joins the user's text, so that both are tokenized together as a
    // Hugging Face tokenizer would; the rest is tokenized with special tokens parsed.
    void split_tail() {
        const auto toks = tokenize(layout_.tail, true);
        for (llama_token t : toks) {
            if (llama_vocab_get_attr(vocab_, t) & LLAMA_TOKEN_ATTR_CONTROL) {
                char         piece[256];
                const int    n  = llama_token_to_piece(vocab_, t, piece, sizeof(piece), 0, true);
                const size_t at = n > 0 ? layout_.tail.find(std::string(piece, n)) : std::string::npos;
                if (at != std::string::npos) {
                    tail_plain_   = layout_.tail.substr(0, at);
                    tail_special_ = layout_.tail.substr(at);
                    return;
                }
                break;
            }
        }
        tail_plain_   = layout_.tail;
        tail_special_ = "";
    }

    image processor_input(const image & img) const override {
        image resized;
        return hf_resize_image(img, resized) ? resized : img;
    }

    // The family's Hugging Face resize of an image into `resized`; false where there is none (the
    // image goes to mtmd as it is).
    bool hf_resize_image(const image & original, image & resized) const {
        if (hf_resize_.factor > 0) {
            const int f = hf_resize_.factor;
            int       w = 0, h = 0;
            // The upper pixel limit capped where mtmd would downscale again.
            const int64_t max_pixels =
                std::min<int64_t>(hf_resize_.max_pixels, (int64_t)k_mtmd_max_image_tokens * f * f);
            try {
                if (hf_resize_.longest_edge > 0) {
                    pixtral_size(original.width, original.height, hf_resize_.longest_edge, f, w, h);
                } else {
                    smart_resize(original.width, original.height, f, hf_resize_.min_pixels, max_pixels, w, h);
                }
            } catch (const error & e) {
                throw error(original.source + ": " + e.what());  // which file, as the engine's other errors
            }
            if (w == original.width && h == original.height) {
                return false;
            }
            resized = params_.processor == image_processor::fast && !hf_resize_.pillow
                          ? resize_bicubic_torch(original, w, h)
                          : resize_bicubic(original, w, h);
            return true;
        }
        if (square_bilinear_ > 0 && (original.width != square_bilinear_ || original.height != square_bilinear_)) {
            resized = resize_bilinear(original, square_bilinear_, square_bilinear_);
            return true;
        }
        return false;
    }

    prepared_image prepare(const image & original) {
        image resized;
        hf_resize_image(original, resized);
        const image &    img = resized.rgb.empty() ? original : resized;
        mtmd::bitmap_ptr bmp(mtmd_bitmap_init((uint32_t)img.width, (uint32_t)img.height, img.rgb.data()));
        if (!bmp) {
            throw error(img.source + ": cannot pass the image to mtmd");
        }
        mtmd_input_text         head{ layout_.head.c_str(), layout_.head.size(), false, true };
        mtmd_input_part         p_text{ &head, nullptr };
        mtmd_input_part         p_image{ nullptr, bmp.get() };
        const mtmd_input_part * parts[] = { &p_text, &p_image };

        prepared_image pi;
        pi.source = original.source;
        pi.chunks.reset(mtmd_input_chunks_init());
        const int32_t res = mtmd_tokenize_from_parts(mtmd_.get(), pi.chunks.get(), parts, 2, true);
        if (res != 0) {
            throw error(img.source + ": the projector cannot preprocess this image (code " + std::to_string(res) + ")");
        }
        const size_t n     = mtmd_input_chunks_size(pi.chunks.get());
        pi.n_prefix_chunks = n;
        if (n > 0) {
            const mtmd_input_chunk * last = mtmd_input_chunks_get(pi.chunks.get(), n - 1);
            if (mtmd_input_chunk_get_type(last) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                size_t              nt = 0;
                const llama_token * t  = mtmd_input_chunk_get_tokens_text(last, &nt);
                pi.image_close.assign(t, t + nt);
                pi.n_prefix_chunks = n - 1;
            }
        }
        for (size_t i = 0; i < pi.n_prefix_chunks; ++i) {
            pi.n_prefix_tokens += (int64_t)mtmd_input_chunk_get_n_tokens(mtmd_input_chunks_get(pi.chunks.get(), i));
        }
        return pi;
    }

    // The user's text is tokenized with special tokens off (a condition is plain text) unless
    // parse_special asks for the reference's behaviour (its processor parses the whole prompt).
    std::vector<llama_token> suffix_tokens(const prepared_image & pi, const std::string & instr,
                                           bool parse_special) const {
        std::vector<llama_token> out  = pi.image_close;
        const auto               user = tokenize(layout_.text_prefix + instr + tail_plain_, parse_special);
        const auto               tmpl = tokenize(tail_special_, true);
        out.insert(out.end(), user.begin(), user.end());
        out.insert(out.end(), tmpl.begin(), tmpl.end());
        return out;
    }

    // How many tokens a suffix shares with every other condition of its prompt type: the longest
    // common run with the suffixes of two probe conditions that differ in their first byte, i.e.
    // the template's words before the condition ("... regarding"), whatever the other conditions
    // of a run are. At least the last token stays the condition's own.
    static size_t template_split(const std::vector<std::vector<llama_token>> & probes,
                                 const std::vector<llama_token> &              suffix) {
        size_t n = suffix.empty() ? 0 : suffix.size() - 1;
        for (const auto & p : probes) {
            size_t k = 0;
            while (k < n && k < p.size() && p[k] == suffix[k]) {
                ++k;
            }
            n = k;
        }
        return n;
    }

    // Token ids of a whole prompt, image tokens as -1.
    std::vector<int32_t> prompt_ids(const prepared_image & pi, const std::vector<llama_token> & suffix) const {
        std::vector<int32_t> out;
        for (size_t i = 0; i < pi.n_prefix_chunks; ++i) {
            const mtmd_input_chunk * c = mtmd_input_chunks_get(pi.chunks.get(), i);
            if (mtmd_input_chunk_get_type(c) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                size_t              n = 0;
                const llama_token * t = mtmd_input_chunk_get_tokens_text(c, &n);
                out.insert(out.end(), t, t + n);
            } else {
                out.insert(out.end(), mtmd_input_chunk_get_n_tokens(c), -1);
            }
        }
        out.insert(out.end(), suffix.begin(), suffix.end());
        return out;
    }

    // --- generation ------------------------------------------------------------------------

    // Generation stops after one of these: the model's end-of-generation tokens, less the
    // fill-in-the-middle ones llama.cpp also counts (Hugging Face's generation_config lists only
    // the end-of-turn and end-of-text tokens).
    bool is_stop(llama_token t) const {
        return llama_vocab_is_eog(vocab_, t) && t != llama_vocab_fim_pad(vocab_) && t != llama_vocab_fim_rep(vocab_) &&
               t != llama_vocab_fim_sep(vocab_);
    }

    // The id an image placeholder has in Hugging Face's input_ids (Qwen's <|image_pad|>), for the
    // repetition penalty; -1 if the vocabulary has no such single token.
    llama_token image_pad_id() const {
        const auto t = tokenize("<|image_pad|>", true);
        return t.size() == 1 && (llama_vocab_get_attr(vocab_, t[0]) & LLAMA_TOKEN_ATTR_CONTROL) ? t[0] : -1;
    }

    // Greedy (or sampled) continuation of the prompt just evaluated, whose last token's logits are
    // the context's last output. `pos` is the position after the prompt. Every generated token but
    // the last is fed back; the last too when its hidden state is read (first/mean_output).
    void generate(const std::vector<int32_t> & prompt, llama_pos pos, const embed_params & ep, condition_vectors & cv) {
        const generation_params & g          = ep.generation;
        const bool                need_state = ep.source != embed_source::input_last;
        const int                 n_vocab    = llama_vocab_n_tokens(vocab_);
        const int64_t             n_prompt   = (int64_t)prompt.size();

        std::vector<uint8_t> seen;  // tokens in the sequence so far, for the repetition penalty
        if (g.repeat_penalty != 1.0f) {
            seen.assign(n_vocab, 0);
            const llama_token pad = image_pad_;
            for (int32_t t : prompt) {
                const int32_t id = t >= 0 ? t : pad;
                if (id >= 0 && id < n_vocab) {
                    seen[id] = 1;
                }
            }
        }
        std::unique_ptr<llama_sampler, decltype(&llama_sampler_free)> sampler(nullptr, llama_sampler_free);
        if (g.temperature > 0) {
            sampler.reset(llama_sampler_chain_init(llama_sampler_chain_default_params()));
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_temp(g.temperature));
            if (g.top_k > 0) {
                llama_sampler_chain_add(sampler.get(), llama_sampler_init_top_k(g.top_k));
            }
            if (g.top_p < 1.0f) {
                llama_sampler_chain_add(sampler.get(), llama_sampler_init_top_p(g.top_p, 1));
            }
            llama_sampler_chain_add(sampler.get(), llama_sampler_init_dist(g.seed));
        }
        std::vector<float>            logits(n_vocab);
        std::vector<llama_token_data> cand;
        for (int i = 0; i < g.max_new_tokens; ++i) {
            const float * l = llama_get_logits_ith(ctx_.get(), -1);
            if (!l) {
                throw error("llama.cpp returned no logits to generate from");
            }
            std::copy(l, l + n_vocab, logits.begin());
            if (!seen.empty()) {  // RepetitionPenaltyLogitsProcessor
                for (int t = 0; t < n_vocab; ++t) {
                    if (seen[t]) {
                        logits[t] = logits[t] < 0 ? logits[t] * g.repeat_penalty : logits[t] / g.repeat_penalty;
                    }
                }
            }
            llama_token next = 0;
            if (!sampler) {  // argmax, the first maximum on a tie (as torch.argmax)
                next = (llama_token)(std::max_element(logits.begin(), logits.end()) - logits.begin());
            } else {
                cand.resize(n_vocab);
                for (int t = 0; t < n_vocab; ++t) {
                    cand[t] = { t, logits[t], 0.0f };
                }
                llama_token_data_array arr{ cand.data(), cand.size(), -1, false };
                llama_sampler_apply(sampler.get(), &arr);
                next = arr.data[arr.selected].id;
            }
            cv.generated.push_back(next);
            if (!seen.empty()) {
                seen[next] = 1;
            }
            const bool last = is_stop(next) || i + 1 == g.max_new_tokens;
            if (last && !need_state) {
                break;
            }
            eval_token(next, n_prompt + i, pos, need_state);
            if (last) {
                break;
            }
        }
        cv.answer = detokenize(cv.generated);
        std::vector<int32_t> all;
        for (int32_t t : prompt) {
            if (t >= 0) {
                all.push_back(t);
            }
        }
        all.insert(all.end(), cv.generated.begin(), cv.generated.end());
        cv.text = detokenize(all);
    }

    // Tokens to text as Hugging Face's decode(skip_special_tokens=True): control tokens left out,
    // the bytes of the others joined, invalid UTF-8 replaced.
    std::string detokenize(const std::vector<int32_t> & toks) const {
        std::string bytes;
        char        buf[256];
        for (int32_t t : toks) {
            int n = llama_token_to_piece(vocab_, t, buf, sizeof(buf), 0, false);
            if (n < 0) {
                std::string big((size_t)-n, '\0');
                n = llama_token_to_piece(vocab_, t, big.data(), (int32_t)big.size(), 0, false);
                bytes += big.substr(0, (size_t)std::max(n, 0));
            } else {
                bytes.append(buf, (size_t)n);
            }
        }
        return utf8_lossy(bytes);
    }

    // --- evaluation ------------------------------------------------------------------------

    // One generated token at absolute index `tok`, position `pos` (advanced); its logits are kept,
    // its hidden states captured when `capture`.
    void eval_token(llama_token t, int64_t tok, llama_pos & pos, bool capture) {
        llama_batch batch  = llama_batch_init(1, 0, 1);
        batch.token[0]     = t;
        batch.pos[0]       = pos;
        batch.n_seq_id[0]  = 1;
        batch.seq_id[0][0] = 0;
        batch.logits[0]    = true;
        batch.n_tokens     = 1;
        try {
            decode(batch, tok, capture ? std::vector<int64_t>{ tok } : std::vector<int64_t>{});
        } catch (...) {
            llama_batch_free(batch);
            throw;
        }
        llama_batch_free(batch);
        pos += 1;
    }

    // Evaluates the prefix chunks from position 0; returns the position after them.
    llama_pos eval_prefix(const prepared_image & pi, positions mode, const std::vector<int64_t> & wanted,
                          std::vector<std::vector<float>> & image_embd) {
        int64_t   tok     = 0;
        llama_pos pos     = 0;
        size_t    n_image = 0;  // image chunks so far
        for (size_t i = 0; i < pi.n_prefix_chunks; ++i) {
            const mtmd_input_chunk * chunk = mtmd_input_chunks_get(pi.chunks.get(), i);
            const int64_t            n     = (int64_t)mtmd_input_chunk_get_n_tokens(chunk);
            std::vector<int64_t>     w;
            for (int64_t t : wanted) {
                if (t >= tok && t < tok + n) {
                    w.push_back(t);
                }
            }
            if (mtmd_input_chunk_get_type(chunk) == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                size_t              nt = 0;
                const llama_token * t  = mtmd_input_chunk_get_tokens_text(chunk, &nt);
                const auto          t0 = std::chrono::steady_clock::now();
                eval_text(std::vector<llama_token>(t, t + nt), tok, pos, w);
                timings_.prefix_ms += ms_since(t0);
            } else {
                if (image_embd.size() <= n_image) {
                    const auto t0 = std::chrono::steady_clock::now();
                    if (mtmd_encode_chunk(mtmd_.get(), chunk) != 0) {
                        throw error("the vision encoder failed on this image");
                    }
                    const size_t  n_inp = (size_t)llama_model_n_embd_inp(model_.get());
                    const float * e     = mtmd_get_output_embd(mtmd_.get());
                    image_embd.emplace_back(e, e + n * n_inp);
                    timings_.encode_ms += ms_since(t0);
                }
                const auto t0 = std::chrono::steady_clock::now();
                eval_image(chunk, image_embd[n_image++], tok, pos, mode, w);
                timings_.prefix_ms += ms_since(t0);
            }
            tok += n;
        }
        return pos;
    }

    // Drops the cache's tokens from `pos` on, back to a shared prefix.
    void cut_back(llama_pos pos) {
        if (!llama_memory_seq_rm(llama_get_memory(ctx_.get()), 0, pos, -1)) {
            throw error("llama.cpp cannot cut this model's memory back to the shared prefix");
        }
    }

    void decode(llama_batch & batch, int64_t first, const std::vector<int64_t> & wanted) {
        capture_.begin_batch(first, batch.n_tokens, wanted, logits_read_);
        run_decode(batch, "", "raise --ctx-size");
    }

    // llama_decode of a batch whose capture has begun; a full KV cache gets `full_hint`.
    void run_decode(llama_batch & batch, const char * what, const char * full_hint) {
        const int32_t ret = llama_decode(ctx_.get(), batch);
        if (ret != 0) {
            throw error(std::string("llama_decode failed") + what + " (code " + std::to_string(ret) + ")" +
                        (ret == 1 ? std::string(": no room in the KV cache; ") + full_hint : std::string()));
        }
        if (!capture_.batch_error().empty()) {
            throw error(capture_.batch_error());
        }
    }

    static std::vector<int64_t> in_range(const std::vector<int64_t> & wanted, int64_t first, int64_t n) {
        std::vector<int64_t> out;
        for (int64_t t : wanted) {
            if (t >= first && t < first + n) {
                out.push_back(t);
            }
        }
        return out;
    }

    // Text tokens starting at absolute token index `tok` and position `pos` (advanced).
    void eval_text(const std::vector<llama_token> & toks, int64_t tok, llama_pos & pos,
                   const std::vector<int64_t> & wanted) {
        const int n_batch = params_.n_batch;
        for (size_t off = 0; off < toks.size(); off += n_batch) {
            const int   n     = (int)std::min<size_t>(n_batch, toks.size() - off);
            llama_batch batch = llama_batch_init(n, 0, 1);
            const auto  w     = in_range(wanted, tok + (int64_t)off, n);
            for (int i = 0; i < n; ++i) {
                batch.token[i]     = toks[off + i];
                batch.pos[i]       = pos + i;
                batch.n_seq_id[i]  = 1;
                batch.seq_id[i][0] = 0;
                batch.logits[i]    = false;
                for (int64_t t : w) {
                    batch.logits[i] |= (t == tok + (int64_t)off + i);
                }
            }
            batch.n_tokens = n;
            try {
                decode(batch, tok + (int64_t)off, w);
            } catch (...) {
                llama_batch_free(batch);
                throw;
            }
            llama_batch_free(batch);
            pos += n;
        }
    }

    // Image embeddings. Positions: sequential (token i at pos + i in every M-RoPE section) or
    // native (the model's own 2-D layout, as mtmd's helper does).
    void eval_image(const mtmd_input_chunk * chunk, std::vector<float> & embd, int64_t tok, llama_pos & pos,
                    positions mode, const std::vector<int64_t> & wanted) {
        const int  n_tokens   = (int)mtmd_input_chunk_get_n_tokens(chunk);
        const bool mrope      = mtmd_decode_use_mrope(mtmd_.get());
        const int  n_pp       = mrope ? 4 : 1;
        const int  n_inp      = llama_model_n_embd_inp(model_.get());
        const bool non_causal = mtmd_decode_use_non_causal(mtmd_.get(), chunk);
        if (non_causal && n_tokens > params_.n_batch) {
            throw error("this model attends to all image tokens at once: raise --batch-size to at least " +
                        std::to_string(n_tokens));
        }
        const std::vector<llama_pos> all_pos = image_positions(chunk, pos, mode);  // [n_pp][n_tokens]

        if (non_causal) {
            llama_set_causal_attn(ctx_.get(), false);
        }
        try {
            for (int off = 0; off < n_tokens; off += params_.n_batch) {
                const int                   n = std::min(params_.n_batch, n_tokens - off);
                std::vector<llama_pos>      p((size_t)n * n_pp, 0);
                std::vector<int32_t>        n_seq(n, 1);
                llama_seq_id                seq0 = 0;
                std::vector<llama_seq_id *> seq(n + 1, &seq0);
                std::vector<int8_t>         logits(n, 0);
                const auto                  w = in_range(wanted, tok + off, n);
                for (int i = 0; i < n; ++i) {
                    const int k = off + i;
                    for (int s = 0; s < n_pp; ++s) {
                        p[(size_t)s * n + i] = all_pos[(size_t)s * n_tokens + k];
                    }
                    for (int64_t t : w) {
                        logits[i] |= (t == tok + k);
                    }
                }
                // Hugging Face's hidden_states[0] of an image token is its row of the merged
                // image embedding, which enters the graph as input rather than as a named node.
                if (capture_.wants_layer(0)) {
                    for (int64_t t : w) {
                        const float * row = embd.data() + (size_t)(t - tok) * n_inp;
                        capture_.put(t, 0, std::vector<float>(row, row + n_embd_));
                    }
                }
                seq[n] = nullptr;
                llama_batch batch{};
                batch.n_tokens = n;
                batch.embd     = embd.data() + (size_t)off * n_inp;
                batch.pos      = p.data();
                batch.n_seq_id = n_seq.data();
                batch.seq_id   = seq.data();
                batch.logits   = logits.data();
                decode(batch, tok + off, w);
            }
        } catch (...) {
            if (non_causal) {
                llama_set_causal_attn(ctx_.get(), true);
            }
            throw;
        }
        if (non_causal) {
            llama_set_causal_attn(ctx_.get(), true);
        }
        pos += (mode == positions::native && mrope) ? mtmd_input_chunk_get_n_pos(chunk) : n_tokens;
    }

    model_params                                          params_;
    std::unique_ptr<llama_model, llama_model_deleter>     model_;
    std::unique_ptr<llama_context, llama_context_deleter> ctx_;
    mtmd::context_ptr                                     mtmd_;
    const llama_vocab *                                   vocab_   = nullptr;
    int                                                   n_embd_  = 0;
    int                                                   n_layer_ = 0;
    std::string                                           marker_;
    chat_layout                                           layout_;
    std::string                                           tail_plain_;
    std::string                                           tail_special_;
    hf_resize                                             hf_resize_;  // factor > 0: Hugging Face's Qwen-VL resize
    int            square_bilinear_ = 0;    // > 0: Hugging Face's Gemma 3 resize to this square
    llama_token    image_pad_       = -1;   // see image_pad_id()
    int            max_images_      = 1;    // images per embed_many group
    int            decode_rows_     = 512;  // rows per decode of embed_many
    int            n_seq_max_       = 1;
    bool           on_gpu_          = false;  // the text model runs on a GPU backend (see k_blas_rows)
    hidden_capture capture_;
    bool           logits_read_ = true;  // whether the current embed reads any batch's logits
    timings        timings_;
};

}  // namespace

std::unique_ptr<model> model::load(const model_params & params) {
    return std::make_unique<model_impl>(params);
}

const char * image_processor_name(image_processor p) {
    switch (p) {
        case image_processor::fast:
            return "fast";
        case image_processor::slow:
            return "slow";
        case image_processor::mtmd:
            return "mtmd";
    }
    return "?";
}

std::optional<image_processor> parse_image_processor(const std::string & name) {
    for (image_processor p : { image_processor::fast, image_processor::slow, image_processor::mtmd }) {
        if (name == image_processor_name(p)) {
            return p;
        }
    }
    return std::nullopt;
}

const char * embed_source_name(embed_source s) {
    switch (s) {
        case embed_source::input_last:
            return "input_last";
        case embed_source::first_output:
            return "first_output";
        case embed_source::mean_output:
            return "mean_output";
    }
    return "?";
}

std::optional<embed_source> parse_embed_source(const std::string & name) {
    for (embed_source s : { embed_source::input_last, embed_source::first_output, embed_source::mean_output }) {
        if (name == embed_source_name(s)) {
            return s;
        }
    }
    return std::nullopt;
}

int parse_image_batch(const std::string & text) {
    if (text == "auto") {
        return 0;
    }
    size_t    used = 0;
    long long n    = -1;
    try {
        n = std::stoll(text, &used);
    } catch (const std::exception &) {
        used = 0;
    }
    if (used != text.size() || n < 1 || n > 256) {
        throw error("--image-batch " + text + ": use a count of images from 1 to 256, or auto");
    }
    return (int)n;
}

std::string engine_version() {
    return DIOR_ENGINE_VERSION;
}

}  // namespace dior
