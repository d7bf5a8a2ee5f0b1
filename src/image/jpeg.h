// JPEG decoding with libjpeg-turbo, pixel for pixel as Pillow decodes and converts to RGB.
#pragma once

#include "dior.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace dior {

bool  is_jpeg(const uint8_t * data, size_t size);  // starts with the SOI marker
image decode_jpeg(const uint8_t * data, size_t size, const std::string & source);

}  // namespace dior
