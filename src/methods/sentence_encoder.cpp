// Sentence encoders (sentence-transformers models) on llama.cpp: the transformer and its pooling
// run in libllama (BERT family, as llama.cpp's converter writes them), the modules after the
// pooling as sentence-transformers applies them (Normalize), from the metadata that
// tools/convert-sentence adds.
#include "dior.h"
#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

namespace dior {
namespace {

class sentence_impl final : public sentence_encoder {
  public:
    explicit sentence_impl(const sentence_encoder_params & p) : params_(p) {
        static std::once_flag once;
        std::call_once(once, [] { llama_backend_init(); });
        if (!p.verbose) {  // quiet by default: errors only
            llama_log_set(
                [](ggml_log_level level, const char * text, void *) {
                    if (level == GGML_LOG_LEVEL_ERROR) {
                        std::fputs(text, stderr);
                    }
                },
                nullptr);
        }
        llama_model_params mp = llama_model_default_params();
        mp.n_gpu_layers       = p.n_gpu_layers;
        model_                = llama_model_load_from_file(p.path.c_str(), mp);
        if (!model_) {
            throw error(p.path + ": not a GGUF model llama.cpp can load (-v shows why)");
        }
        char buf[256];
        if (llama_model_meta_val_str(model_, "dior.sentence.max_seq_length", buf, sizeof(buf)) < 0) {
            llama_model_free(model_);
            throw error(p.path +
                        ": no sentence-transformers metadata; convert the model with "
                        "tools/convert-sentence/convert_sentence_to_gguf.py");
        }
        max_len_ = std::atoi(buf);
        if (max_len_ <= 0) {
            max_len_ = llama_model_n_ctx_train(model_);
        }
        if (llama_model_meta_val_str(model_, "dior.sentence.id", buf, sizeof(buf)) > 0) {
            name_ = buf;  // else the file name (general.name is prettified: "All MiniLM L6 v2")
        }
        if (name_.empty()) {
            name_ = std::filesystem::path(p.path).stem().string();
        }
        if (llama_model_meta_val_str(model_, "dior.sentence.modules", buf, sizeof(buf)) >= 0) {
            const std::string modules = buf;  // comma-separated, in order
            normalize_                = modules.find("Normalize") != std::string::npos;
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx                = (uint32_t)max_len_;
        cp.n_batch              = (uint32_t)max_len_;
        cp.n_ubatch             = (uint32_t)max_len_;  // the whole sentence in one pass (non-causal)
        cp.embeddings           = true;
        cp.n_threads            = cp.n_threads_batch =
            p.n_threads > 0 ? p.n_threads : (int)std::max(1u, std::thread::hardware_concurrency());
        cp.no_perf         = true;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;  // flash attention would round K and V to F16
        ctx_               = llama_init_from_model(model_, cp);
        if (!ctx_) {
            llama_model_free(model_);
            throw error(p.path + ": cannot create a llama.cpp context");
        }
        if (llama_pooling_type(ctx_) == LLAMA_POOLING_TYPE_NONE) {
            llama_free(ctx_);
            llama_model_free(model_);
            throw error(p.path + ": the model has no pooling; a sentence encoder pools its tokens");
        }
        // Bidirectional, whatever the file says (a T5 encoder converted without the flag reads as
        // causal); see tools/convert-sentence.
        llama_set_causal_attn(ctx_, false);
        vocab_ = llama_model_get_vocab(model_);
    }

    ~sentence_impl() override {
        llama_free(ctx_);
        llama_model_free(model_);
    }

    int n_embd() const override { return llama_model_n_embd_out(model_); }  // after a Dense, its width

    int max_seq_length() const override { return max_len_; }

    std::string name() const override { return name_; }

    // As sentence-transformers' tokenizer(text): the special tokens' literals in the text ("[CLS]",
    // "</s>", "<mask>") are those tokens; llama.cpp's WPM normalizes as BertNormalizer (patch 0009).
    std::vector<int32_t> tokenize(const std::string & text) const override {
        std::vector<llama_token> toks(text.size() + 8);
        int32_t                  n =
            llama_tokenize(vocab_, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), true, true);
        if (n < 0) {
            toks.resize(-n);
            n = llama_tokenize(vocab_, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), true,
                               true);
        }
        if (n < 0) {
            throw error("sentence encoder: cannot tokenize the text");
        }
        toks.resize(n);
        // Truncated to max_seq_length as sentence-transformers does: the end token kept last.
        if ((int)toks.size() > max_len_) {
            const llama_token last = toks.back();
            toks.resize(max_len_);
            toks.back() = last;
        }
        return toks;
    }

    std::vector<float> encode(const std::string & text) override {
        std::vector<llama_token> toks = tokenize(text);
        llama_memory_clear(llama_get_memory(ctx_), true);
        llama_batch batch = llama_batch_init((int32_t)toks.size(), 0, 1);
        for (size_t i = 0; i < toks.size(); ++i) {
            batch.token[i]     = toks[i];
            batch.pos[i]       = (llama_pos)i;
            batch.n_seq_id[i]  = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i]    = true;
        }
        batch.n_tokens = (int32_t)toks.size();
        const int rc   = llama_decode(ctx_, batch);
        llama_batch_free(batch);
        if (rc != 0) {
            throw error("sentence encoder: llama_decode failed (code " + std::to_string(rc) + ")");
        }
        const float * e = llama_get_embeddings_seq(ctx_, 0);
        if (!e) {
            throw error("sentence encoder: no pooled embedding");
        }
        std::vector<float> v(e, e + n_embd());
        if (normalize_) {  // sentence-transformers' Normalize: v / max(|v|, 1e-12)
            double n = 0;
            for (float x : v) {
                n += (double)x * x;
            }
            const double d = std::max(std::sqrt(n), 1e-12);
            for (float & x : v) {
                x = (float)(x / d);
            }
        }
        return v;
    }

  private:
    sentence_encoder_params params_;
    llama_model *           model_ = nullptr;
    llama_context *         ctx_   = nullptr;
    const llama_vocab *     vocab_ = nullptr;
    std::string             name_;
    int                     max_len_   = 0;
    bool                    normalize_ = false;
};

}  // namespace

std::unique_ptr<sentence_encoder> sentence_encoder::load(const sentence_encoder_params & params) {
    return std::make_unique<sentence_impl>(params);
}

}  // namespace dior
