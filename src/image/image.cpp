// Image loading: bytes -> RGB (JPEG: libjpeg-turbo as Pillow; others: stb_image, as vendored by
// llama.cpp) -> downscale (Lanczos).
#include "dior.h"
#include "image/jpeg.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include "stb/stb_image.h"

namespace dior {

void fit_size(int width, int height, int max_size, int & out_width, int & out_height) {
    out_width        = width;
    out_height       = height;
    const int longer = width > height ? width : height;
    if (max_size <= 0 || longer <= max_size) {
        return;
    }
    const double ratio = static_cast<double>(max_size) / longer;
    if (width >= height) {
        out_width  = max_size;
        out_height = static_cast<int>(height * ratio);
    } else {
        out_height = max_size;
        out_width  = static_cast<int>(width * ratio);
    }
    out_width  = out_width < 1 ? 1 : out_width;
    out_height = out_height < 1 ? 1 : out_height;
}

void smart_resize(int width, int height, int factor, int64_t min_pixels, int64_t max_pixels, int & out_width,
                  int & out_height) {
    const double h = height, w = width, f = factor;
    if (std::max(h, w) / std::min(h, w) > 200) {
        throw error("image " + std::to_string(width) + "x" + std::to_string(height) +
                    ": aspect ratio over 200, which Qwen2-VL's image processor refuses");
    }
    // Python's round() rounds halves to even, as std::nearbyint does by default.
    double h_bar = std::nearbyint(h / f) * f, w_bar = std::nearbyint(w / f) * f;
    if (h_bar * w_bar > (double)max_pixels) {
        const double beta = std::sqrt(h * w / (double)max_pixels);
        h_bar             = std::max(f, std::floor(h / beta / f) * f);
        w_bar             = std::max(f, std::floor(w / beta / f) * f);
    } else if (h_bar * w_bar < (double)min_pixels) {
        const double beta = std::sqrt((double)min_pixels / (h * w));
        h_bar             = std::ceil(h * beta / f) * f;
        w_bar             = std::ceil(w * beta / f) * f;
    }
    out_width  = (int)w_bar;
    out_height = (int)h_bar;
}

image decode_image(const uint8_t * data, size_t size, const std::string & source, int max_size) {
    if (size == 0) {
        throw error(source + ": empty file (0 bytes); remove it or replace it with a valid image");
    }
    if (size > static_cast<size_t>(INT32_MAX)) {
        throw error(source + ": file too large to be an image");
    }
    image img;
    if (is_jpeg(data, size)) {
        img = decode_jpeg(data, size, source);
    } else {
        int       w = 0, h = 0, channels = 0;
        uint8_t * px = stbi_load_from_memory(data, static_cast<int>(size), &w, &h, &channels, 3);
        if (px == nullptr) {
            throw error(source + ": cannot decode image (" + stbi_failure_reason() +
                        "); supported: JPEG, PNG, BMP, GIF, TGA, PSD, HDR, PIC, PNM");
        }
        img.source = source;
        img.width  = w;
        img.height = h;
        img.rgb.assign(px, px + static_cast<size_t>(w) * h * 3);
        stbi_image_free(px);
    }
    const int w = img.width, h = img.height;

    int tw = 0, th = 0;
    fit_size(w, h, max_size, tw, th);
    return (tw == w && th == h) ? img : resize_lanczos(img, tw, th);
}

std::vector<uint8_t> read_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw error(path + ": cannot open file (missing or unreadable)");
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) {
        throw error(path + ": read error");
    }
    return bytes;
}

image load_image(const std::string & path, int max_size) {
    const std::vector<uint8_t> bytes = read_file(path);
    return decode_image(bytes.data(), bytes.size(), path, max_size);
}

}  // namespace dior
