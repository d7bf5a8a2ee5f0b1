// Paths of the generated test fixtures, the dior binary and the oracle Python, set by
// tests/CMakeLists.txt.
#pragma once

#include <string>

namespace dior::test {

// text.gguf, mmproj.gguf of the tiny random-weight Qwen2.5-VL
inline std::string tiny_dir() {
    return DIOR_TEST_TINY_DIR;
}

// what tests/oracle/pil_images.py wrote
inline std::string pil_cases_dir() {
    return DIOR_TEST_PIL_DIR;
}

// what tests/oracle/pml_cases.py wrote
inline std::string pml_cases_dir() {
    return DIOR_TEST_PML_DIR;
}

// what tests/oracle/hf_parity.py wrote
inline std::string hf_parity_dir() {
    return DIOR_TEST_HF_PARITY_DIR;
}

// the dior tool
inline std::string dior_bin() {
    return DIOR_TEST_BIN;
}

// Python with the oracle packages (tests/requirements.txt)
inline std::string python() {
    return DIOR_TEST_PYTHON;
}

}  // namespace dior::test
