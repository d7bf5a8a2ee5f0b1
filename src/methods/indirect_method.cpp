// InDiReCT as a method (SPEC 2): per aspect, U fitted on the normalised CLIP text features of the
// aspect's condition texts; an image's vector = normalize(U . normalize(CLIP image feature)).
#include "dior.h"
#include "dior_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace dior {
namespace {

class indirect_method final : public method {
  public:
    indirect_method(clip_model & m, const std::vector<indirect_texts> & aspects, const dimredrecon_params & p)
        : m_(m), aspects_(aspects), params_(p) {
        for (const auto & a : aspects_) {
            if (a.texts.empty()) {
                throw error("InDiReCT: no texts for " + a.dataset + " / " + a.key);
            }
            u_.push_back(fit_dimredrecon(indirect_text_matrix(m_, a.texts), params_).u);
        }
    }

    std::vector<setting> settings(const setting & base) const override {
        std::vector<setting> out;
        for (const auto & a : aspects_) {
            setting s     = base;
            s.source      = "indirect";
            s.prompt_type = "";
            s.positions   = "";
            s.condition   = a.aspect;
            s.prompt      = indirect_setting_prompt(a);
            s.layer       = -1;
            s.token       = -1;
            s.components  = params_.components;
            s.n_embd      = params_.components;
            s.engine_options =
                base.engine_options + (base.engine_options.empty() ? "" : " ") + "seed=" + std::to_string(params_.seed);
            out.push_back(std::move(s));
        }
        return out;
    }

    std::vector<output> embed(const image & img, const std::vector<size_t> & which) override {
        const std::vector<float> f = m_.image_features(img);
        std::vector<output>      out;
        for (size_t i : which) {
            out.push_back({ indirect_embed(u_[i], f), {} });
        }
        return out;
    }

  private:
    clip_model &                m_;
    std::vector<indirect_texts> aspects_;
    dimredrecon_params          params_;
    std::vector<matrix>         u_;
};

}  // namespace

std::string indirect_setting_prompt(const indirect_texts & t) {
    std::string all;
    for (const auto & x : t.texts) {
        all += x + "\n";
    }
    return t.source + " sha256:" + sha256_hex(all.data(), all.size()).substr(0, 16);
}

matrix indirect_text_matrix(clip_model & m, const std::vector<std::string> & texts) {
    matrix x;
    x.rows = texts.size();
    x.cols = (size_t)m.projection_dim();
    for (const auto & t : texts) {
        auto   f = m.text_features(t);
        double n = 0;
        for (float v : f) {
            n += (double)v * v;
        }
        for (float & v : f) {
            v = (float)(v / std::sqrt(n));
        }
        x.data.insert(x.data.end(), f.begin(), f.end());
    }
    return x;
}

std::vector<indirect_texts> load_indirect_texts(const std::string & path) {
    const auto                  bytes = read_file(path, (int64_t)64 << 20);
    std::vector<indirect_texts> out;
    try {
        const auto j = json_parse(std::string(bytes.begin(), bytes.end()));
        for (const auto & c : j.at("configs")) {
            indirect_texts t;
            t.dataset             = c.at("dataset").get<std::string>();
            t.key                 = c.at("aspect").get<std::string>();
            t.aspect              = indirect_aspect_name(t.dataset, t.key);
            const std::string tpl = c.at("template").get<std::string>();
            const auto        at  = tpl.find("{item}");
            if (at == std::string::npos) {
                throw error("template '" + tpl + "' has no {item}");
            }
            for (const auto & item : c.at("items")) {
                t.texts.push_back(tpl.substr(0, at) + item.get<std::string>() + tpl.substr(at + 6));
            }
            t.source = tpl + " (" + std::to_string(t.texts.size()) + " items)";
            out.push_back(std::move(t));
        }
    } catch (const error & e) {
        throw error(printable(path) + ": " + e.what());
    } catch (const std::exception & e) {
        throw error(printable(path) + ": not an InDiReCT texts file (" + e.what() +
                    "); expected {\"configs\": [{\"dataset\", \"aspect\", \"template\", \"items\"}]}");
    }
    return out;
}

std::unique_ptr<method> make_indirect_method(clip_model & m, const std::vector<indirect_texts> & aspects,
                                             const dimredrecon_params & params) {
    return std::make_unique<indirect_method>(m, aspects, params);
}

}  // namespace dior
