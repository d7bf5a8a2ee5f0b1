// JPEG decoding with libjpeg-turbo, pixel for pixel as Pillow decodes and converts to RGB.
#pragma once

#include "dior.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace dior {

// "image of W x H = N pixels is larger than the limit ..." (shared by the decoders).
std::string pixel_limit_message(int64_t width, int64_t height, int64_t max_pixels);

bool  is_jpeg(const uint8_t * data, size_t size);  // starts with the SOI marker
// Refuses (dior::error) images of more than max_pixels pixels (0: no limit) from their header.
image decode_jpeg(const uint8_t * data, size_t size, const std::string & source, int64_t max_pixels);

}  // namespace dior
