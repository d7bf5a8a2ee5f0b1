// The CLIP baseline as a method: one setting, the unnormalised image feature (SPEC 2).
#include "dior.h"

namespace dior {
namespace {

class clip_method final : public method {
  public:
    explicit clip_method(clip_model & m) : m_(m) {}

    std::vector<setting> settings(const setting & base) const override {
        setting s     = base;
        s.source      = "clip";
        s.prompt_type = "";
        s.positions   = "";
        s.condition   = std::nullopt;
        s.prompt      = "";
        s.layer       = -1;
        s.token       = -1;
        s.n_embd      = m_.projection_dim();
        return { s };
    }

    std::vector<output> embed(const image & img, const std::vector<size_t> & which) override {
        return std::vector<output>(which.size(), output{ m_.image_features(img), {} });
    }

  private:
    clip_model & m_;
};

}  // namespace

std::unique_ptr<method> make_clip_method(clip_model & m) {
    return std::make_unique<clip_method>(m);
}

}  // namespace dior
