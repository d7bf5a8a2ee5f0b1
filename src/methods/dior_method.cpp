// DIOR as a method: one setting per (condition, layer), all conditions of an image in one
// model::embed() call so that the image prefix is computed once. The generative baseline is here
// too: the same call generates, a sentence encoder embeds the text.
#include "dior.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace dior {
namespace {

// The conditions that the wanted settings need (settings run `per` to a condition), in order.
std::vector<size_t> conditions_of(const std::vector<size_t> & which, size_t per) {
    std::vector<size_t> conds;
    for (size_t i : which) {
        if (std::find(conds.begin(), conds.end(), i / per) == conds.end()) {
            conds.push_back(i / per);
        }
    }
    return conds;
}

// A float option as the user wrote it (0.8f is recorded as 0.8, not 0.800000011920929).
double as_given(float v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", (double)v);
    return std::strtod(buf, nullptr);
}

// The setting fields that describe the prompt and the generation, shared by both methods.
setting prompt_setting(const setting & base, const embed_params & p, const std::optional<std::string> & c) {
    setting s     = base;
    s.prompt_type = prompt_type_name(p.prompt);
    s.condition   = c;
    s.prompt      = instruction(p.prompt, c);
    s.positions   = p.position == positions::native ? "native" : "sequential";
    if (p.generate || p.source != embed_source::input_last) {
        s.max_new_tokens = p.generation.max_new_tokens;
        s.temperature    = as_given(p.generation.temperature);
        s.seed           = p.generation.temperature > 0 ? p.generation.seed : 0;
        if (p.generation.temperature > 0) {  // the sampling warpers are part of what made the text
            char buf[64];
            std::snprintf(buf, sizeof(buf), "top_k=%d top_p=%g", p.generation.top_k, as_given(p.generation.top_p));
            if (!s.engine_options.empty()) {
                s.engine_options += ' ';
            }
            s.engine_options += buf;
        }
        s.repeat_penalty = as_given(p.generation.repeat_penalty);
    }
    return s;
}

class dior_method final : public method {
  public:
    dior_method(model & m, std::vector<std::optional<std::string>> conditions, const embed_params & p)
        : m_(m), conditions_(std::move(conditions)), params_(p) {}

    std::vector<setting> settings(const setting & base) const override {
        std::vector<setting> out;
        for (const auto & c : conditions_) {
            for (int layer : params_.layers) {
                setting s = prompt_setting(base, params_, c);
                s.source  = embed_source_name(params_.source);
                s.layer   = layer;
                s.token   = params_.source == embed_source::input_last ? params_.token : -1;  // unused otherwise
                s.n_embd  = m_.n_embd();
                out.push_back(std::move(s));
            }
        }
        return out;
    }

    std::vector<output> embed(const image & img, const std::vector<size_t> & which) override {
        return embed_many({ img }, which).at(0);
    }

    size_t batch_size() const override { return (size_t)m_.image_batch(); }

    std::vector<std::vector<output>> embed_many(const std::vector<image> &  imgs,
                                                const std::vector<size_t> & which) override {
        const size_t                            n_layers = params_.layers.size();
        const std::vector<size_t>               conds    = conditions_of(which, n_layers);
        std::vector<std::optional<std::string>> todo;
        for (size_t c : conds) {
            todo.push_back(conditions_[c]);
        }
        const auto                       res = m_.embed_many(imgs, todo, params_);
        std::vector<std::vector<output>> out;
        for (const auto & r : res) {
            std::vector<output> one;
            for (size_t i : which) {
                const size_t k = (size_t)(std::find(conds.begin(), conds.end(), i / n_layers) - conds.begin());
                one.push_back({ r[k].vectors[i % n_layers], r[k].answer });
            }
            out.push_back(std::move(one));
        }
        return out;
    }

  private:
    model &                                 m_;
    std::vector<std::optional<std::string>> conditions_;
    embed_params                            params_;
};

class generative_method final : public method {
  public:
    generative_method(model & m, sentence_encoder & enc, std::vector<std::optional<std::string>> conditions,
                      const embed_params & p, std::string text_mode)
        : m_(m), enc_(enc), conditions_(std::move(conditions)), params_(p), mode_(std::move(text_mode)) {
        if (mode_ != "whole" && mode_ != "answer") {
            throw error("the generative method embeds the 'whole' sequence or the 'answer', not '" + mode_ + "'");
        }
        params_.source   = embed_source::input_last;
        params_.generate = true;
        params_.layers   = { -1 };  // read but unused: the vector comes from the sentence encoder
        params_.token    = -1;
    }

    std::vector<setting> settings(const setting & base) const override {
        std::vector<setting> out;
        for (const auto & c : conditions_) {
            setting s      = prompt_setting(base, params_, c);
            s.source       = "generative";
            s.layer        = -1;
            s.token        = -1;
            s.n_embd       = enc_.n_embd();
            s.text_encoder = base.text_encoder.empty() ? enc_.name() : base.text_encoder;
            s.text_mode    = mode_;
            // The sentence encoder as sentence-transformers runs it (special-token literals, erf
            // GELU, no flash attention, Hugging Face's normalizers; issue 25): vectors of older
            // builds are a setting of their own, never mixed with these.
            if (!s.engine_options.empty()) {
                s.engine_options.push_back(' ');
            }
            s.engine_options.append("sentence=st");
            out.push_back(std::move(s));
        }
        return out;
    }

    std::vector<output> embed(const image & img, const std::vector<size_t> & which) override {
        std::vector<std::optional<std::string>> todo;
        for (size_t c : which) {
            todo.push_back(conditions_[c]);
        }
        const auto          res = m_.embed(img, todo, params_);
        std::vector<output> out;
        for (const auto & cv : res) {
            const std::string & text = mode_ == "whole" ? cv.text : cv.answer;
            out.push_back({ enc_.encode(text), text });
        }
        return out;
    }

  private:
    model &                                 m_;
    sentence_encoder &                      enc_;
    std::vector<std::optional<std::string>> conditions_;
    embed_params                            params_;
    std::string                             mode_;
};

}  // namespace

std::unique_ptr<method> make_dior_method(model & m, std::vector<std::optional<std::string>> conditions,
                                         const embed_params & params) {
    return std::make_unique<dior_method>(m, std::move(conditions), params);
}

std::unique_ptr<method> make_generative_method(model & m, sentence_encoder & encoder,
                                               std::vector<std::optional<std::string>> conditions,
                                               const embed_params & params, const std::string & text_mode) {
    return std::make_unique<generative_method>(m, encoder, std::move(conditions), params, text_mode);
}

}  // namespace dior
