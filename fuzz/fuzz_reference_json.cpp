// libFuzzer target: the reader of the reference's vector files (dior import, dior eval
// --embedding-dir). Any input must end in a checked vector or a dior::error.
#include "dior.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    try {
        std::string prompt;
        const auto  v = dior::parse_reference_json(std::string((const char *)data, size), "fuzz.json", &prompt);
        for (float x : v) {
            if (!std::isfinite(x)) {
                __builtin_trap();
            }
        }
        if (v.empty()) {
            __builtin_trap();
        }
    } catch (const dior::error &) {
    }
    return 0;
}
