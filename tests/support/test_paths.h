// Paths of the generated test fixtures and of the dior binary, set by tests/CMakeLists.txt.
#pragma once

#include <string>

namespace dior::test {

inline std::string tiny_dir() {
    return DIOR_TEST_TINY_DIR;
}  // text.gguf, mmproj.gguf
inline std::string pil_cases_dir() {
    return DIOR_TEST_PIL_DIR;
}  // tests/oracle/pil_images.py output
inline std::string dior_bin() {
    return DIOR_TEST_BIN;
}  // the dior tool

}  // namespace dior::test
