// Small images for tests, written without any image library: 24-bit BMP, which stb_image reads.
#pragma once

#include "dior.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace dior::test {

// A deterministic pattern that differs with the seed, so that images embed differently.
inline std::vector<uint8_t> pattern_rgb(int w, int h, int seed) {
    std::vector<uint8_t> rgb((size_t)w * h * 3);
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            uint8_t * p = &rgb[((size_t)y * w + x) * 3];
            p[0]        = (uint8_t)((x * (3 + seed) + y) & 0xff);
            p[1]        = (uint8_t)((y * (5 + 2 * seed)) & 0xff);
            p[2]        = (uint8_t)((((x / (8 + seed)) + (y / 8)) % 2) * 200 + seed * 7);
        }
    }
    return rgb;
}

// pattern_rgb as a decoded image, named "generated-SEED" in messages.
inline dior::image pattern_image(int w, int h, int seed) {
    dior::image img;
    img.source = "generated-" + std::to_string(seed);
    img.width  = w;
    img.height = h;
    img.rgb    = pattern_rgb(w, h, seed);
    return img;
}

inline void write_bmp(const std::string & path, int w, int h, const std::vector<uint8_t> & rgb) {
    const int      row     = (w * 3 + 3) & ~3;
    const uint32_t size    = 54 + (uint32_t)row * h;
    uint8_t        hdr[54] = { 'B', 'M' };
    auto           put32   = [&](int off, uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            hdr[off + i] = (uint8_t)(v >> (8 * i));
        }
    };
    put32(2, size);
    put32(10, 54);
    put32(14, 40);
    put32(18, (uint32_t)w);
    put32(22, (uint32_t)h);
    hdr[26] = 1;
    hdr[28] = 24;
    put32(34, (uint32_t)row * h);
    std::ofstream f(path, std::ios::binary);
    f.write((const char *)hdr, 54);
    std::vector<uint8_t> line(row, 0);
    for (int y = h - 1; y >= 0; --y) {  // bottom-up, BGR
        for (int x = 0; x < w; ++x) {
            const uint8_t * p = &rgb[((size_t)y * w + x) * 3];
            line[x * 3]       = p[2];
            line[x * 3 + 1]   = p[1];
            line[x * 3 + 2]   = p[0];
        }
        f.write((const char *)line.data(), row);
    }
}

// img00.bmp, img01.bmp, ... in dir: image i is width(i) x height, pattern_rgb with seed i.
template <class Width>
inline void write_numbered_bmps(const std::string & dir, int n, Width width, int height) {
    for (int i = 0; i < n; ++i) {
        char name[32];
        std::snprintf(name, sizeof(name), "/img%02d.bmp", i);
        const int w = width(i);
        write_bmp(dir + name, w, height, pattern_rgb(w, height, i));
    }
}

inline void write_file(const std::string & path, const std::string & bytes) {
    std::ofstream f(path, std::ios::binary);
    f << bytes;
}

// Starts like a JPEG (SOI, APP0) and then is garbage: decoders must refuse it.
inline std::string corrupt_jpeg() {
    std::string s = "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xDB";
    for (int i = 0; i < 200; ++i) {
        s.push_back((char)(i * 37 + 11));
    }
    return s;
}

}  // namespace dior::test
