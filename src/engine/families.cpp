#include "engine/families.h"

namespace dior {
namespace {

struct family {
    const char * projector;
    const char * name;
};

constexpr family k_tested[] = {
    { "qwen2vl_merger", "Qwen2-VL" }, { "qwen2.5vl_merger", "Qwen2.5-VL" }, { "qwen3vl_merger", "Qwen3-VL" },
    { "gemma3", "Gemma 3" },          { "idefics3", "SmolVLM / Idefics3" }, { "glm4v", "GLM-4.1V" },
    { "pixtral", "Mistral 3" },
};

}  // namespace

std::string tested_family(const std::string & projector) {
    for (const auto & f : k_tested) {
        if (projector == f.projector) {
            return f.name;
        }
    }
    return "";
}

std::string tested_families() {
    std::string out;
    for (const auto & f : k_tested) {
        out += (out.empty() ? "" : ", ") + std::string(f.name);
    }
    return out;
}

}  // namespace dior
