// DIOR as a method: one setting per (condition, layer), all conditions of an image in one
// model::embed() call so that the image prefix is computed once.
#include "dior.h"

#include <algorithm>

namespace dior {
namespace {

class dior_method final : public method {
  public:
    dior_method(model & m, std::vector<std::optional<std::string>> conditions, const embed_params & p)
        : m_(m), conditions_(std::move(conditions)), params_(p) {}

    std::vector<setting> settings(const setting & base) const override {
        std::vector<setting> out;
        for (const auto & c : conditions_) {
            for (int layer : params_.layers) {
                setting s     = base;
                s.source      = "input_last";
                s.prompt_type = prompt_type_name(params_.prompt);
                s.condition   = c;
                s.prompt      = instruction(params_.prompt, c);
                s.layer       = layer;
                s.token       = params_.token;
                s.positions   = params_.position == positions::native ? "native" : "sequential";
                s.n_embd      = m_.n_embd();
                out.push_back(std::move(s));
            }
        }
        return out;
    }

    std::vector<std::vector<float>> embed(const image & img, const std::vector<size_t> & which) override {
        const size_t n_layers = params_.layers.size();
        // Only the conditions that some wanted setting needs are computed.
        std::vector<size_t> conds;
        for (size_t i : which) {
            if (std::find(conds.begin(), conds.end(), i / n_layers) == conds.end()) {
                conds.push_back(i / n_layers);
            }
        }
        std::vector<std::optional<std::string>> todo;
        for (size_t c : conds) {
            todo.push_back(conditions_[c]);
        }
        const auto                      res = m_.embed(img, todo, params_);
        std::vector<std::vector<float>> out;
        for (size_t i : which) {
            const size_t k = (size_t)(std::find(conds.begin(), conds.end(), i / n_layers) - conds.begin());
            out.push_back(res[k].vectors[i % n_layers]);
        }
        return out;
    }

  private:
    model &                                 m_;
    std::vector<std::optional<std::string>> conditions_;
    embed_params                            params_;
};

}  // namespace

std::unique_ptr<method> make_dior_method(model & m, std::vector<std::optional<std::string>> conditions,
                                         const embed_params & params) {
    return std::make_unique<dior_method>(m, std::move(conditions), params);
}

}  // namespace dior
