// libFuzzer target: image bytes -> dior::decode_image (JPEG through libjpeg-turbo, other formats
// through stb_image, then the Lanczos downscale). Any input must end in an image or a dior::error.
#include "dior.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    dior::image_limits limits;
    limits.max_pixels = 1 << 16;  // keep each run fast; the limit check itself is part of what is tested
    try {
        const dior::image img = dior::decode_image(data, size, "fuzz", 64, limits);
        if (img.rgb.size() != (size_t)img.width * img.height * 3) {
            __builtin_trap();
        }
    } catch (const dior::error &) {
    }
    return 0;
}
