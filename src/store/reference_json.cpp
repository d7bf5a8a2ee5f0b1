// Vector files of the reference's output layout: {"embedding": [...], "prompt": ..., "source": ...}.
#include "dior.h"
#include "dior_json.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace dior {

std::vector<float> parse_reference_json(const std::string & text, const std::string & source, std::string * prompt,
                                        std::string * generated_text, std::string * text_encoder) {
    using json             = nlohmann::json;
    const std::string name = printable(source);
    json              j;
    try {
        j = json_parse(text);
    } catch (const std::exception & e) {
        throw error(name + ": not valid JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("embedding") || !j["embedding"].is_array()) {
        throw error(name + ": no \"embedding\" array");
    }
    const json & e = j["embedding"];
    if (e.empty()) {
        throw error(name + ": the embedding is empty");
    }
    std::vector<float> v;
    v.reserve(e.size());
    for (size_t i = 0; i < e.size(); ++i) {
        if (!e[i].is_number()) {
            throw error(name + ": embedding[" + std::to_string(i) + "] is " + e[i].type_name() + ", not a number");
        }
        const double d = e[i].get<double>();
        const float  x = (float)d;
        if (!std::isfinite(d) || !std::isfinite(x)) {
            throw error(name + ": embedding[" + std::to_string(i) + "] = " + e[i].dump() + " does not fit a float32");
        }
        v.push_back(x);
    }
    for (auto [key, out] : { std::pair{ "prompt", prompt }, std::pair{ "generated_text", generated_text },
                             std::pair{ "text_encoder", text_encoder } }) {
        if (out && j.contains(key) && j[key].is_string()) {
            *out = j[key].get<std::string>();
        }
    }
    return v;
}

}  // namespace dior
