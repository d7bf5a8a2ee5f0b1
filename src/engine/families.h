// The LVLM families whose vectors the parity suite (src/engine/families_test.cpp, parity_test.cpp)
// checks against transformers, by the mmproj's projector type (README, "Model families").
#pragma once

#include <string>

namespace dior {

// The family's name for a projector type ("Gemma 3"), or "" when no family with it is tested.
std::string tested_family(const std::string & projector);

// Every tested family, for messages: "Qwen2-VL, Qwen2.5-VL, ...".
std::string tested_families();

}  // namespace dior
