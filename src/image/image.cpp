// Image loading: bytes -> RGB (JPEG: libjpeg-turbo as Pillow; others: stb_image, as vendored by
// llama.cpp) -> downscale (Lanczos).
#include "dior.h"
#include "image/jpeg.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace {

image fit_and_resize(image img, int max_size) {
    int tw = 0, th = 0;
    fit_size(img.width, img.height, max_size, tw, th);
    return (tw == img.width && th == img.height) ? img : resize_lanczos(img, tw, th);
}

// A 16-bit greyscale PNG (IHDR bit depth 16, colour type 0). Pillow opens it as mode "I;16", and
// convert("RGB") clips each value to 0..255 (other 16-bit PNGs keep their high byte, as stb does).
bool is_grey16_png(const uint8_t * d, size_t n) {
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    return n >= 26 && std::equal(sig, sig + 8, d) && std::equal(d + 12, d + 16, (const uint8_t *)"IHDR") &&
           d[24] == 16 && d[25] == 0;
}

image decode_grey16_png(const uint8_t * data, size_t size, const std::string & source) {
    int        w = 0, h = 0, channels = 0;
    uint16_t * px = stbi_load_16_from_memory(data, static_cast<int>(size), &w, &h, &channels, 1);
    if (px == nullptr) {
        throw error(source + ": cannot decode image (" + stbi_failure_reason() + "); a 16-bit greyscale PNG");
    }
    image img;
    img.source = source;
    img.width  = w;
    img.height = h;
    img.rgb.resize((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h; ++i) {
        const uint8_t v    = (uint8_t)std::min<uint16_t>(px[i], 255);
        img.rgb[i * 3]     = v;
        img.rgb[i * 3 + 1] = v;
        img.rgb[i * 3 + 2] = v;
    }
    stbi_image_free(px);
    return img;
}

}  // namespace

std::string pixel_limit_message(int64_t width, int64_t height, int64_t max_pixels) {
    return "image of " + std::to_string(width) + " x " + std::to_string(height) + " = " +
           std::to_string(width * height) + " pixels is larger than the limit of " + std::to_string(max_pixels) +
           " (a decompression bomb to Pillow too); raise --max-image-pixels to read it";
}

image decode_image(const uint8_t * data, size_t size, const std::string & source, int max_size,
                   const image_limits & limits) {
    if (size == 0) {
        throw error(source + ": empty file (0 bytes); remove it or replace it with a valid image");
    }
    if (size > static_cast<size_t>(INT32_MAX)) {
        throw error(source + ": file too large to be an image");
    }
    image img;
    if (is_jpeg(data, size)) {
        img = decode_jpeg(data, size, source, limits.max_pixels);
    } else {
        int w = 0, h = 0, channels = 0;
        // The header first: refuse a decompression bomb before its pixels are allocated. A top-down
        // BMP reports a negative height here, which stb_image's decoder then turns positive.
        if (stbi_info_from_memory(data, static_cast<int>(size), &w, &h, &channels) && limits.max_pixels > 0 &&
            std::llabs((int64_t)w) * std::llabs((int64_t)h) > limits.max_pixels) {
            throw error(source + ": " +
                        pixel_limit_message(std::llabs((int64_t)w), std::llabs((int64_t)h), limits.max_pixels));
        }
        if (is_grey16_png(data, size)) {
            return fit_and_resize(decode_grey16_png(data, size, source), max_size);
        }
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
    return fit_and_resize(std::move(img), max_size);
}

std::string printable(const std::string & text) {
    if (text.empty()) {
        return "''";
    }
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = (unsigned char)text[i];
        const size_t        n = c >= 0x80 ? utf8_length_at(text, i) : 0;
        if (n > 0) {  // a UTF-8 sequence as it is (a byte that starts none is escaped below)
            out.append(text, i, n);
            i += n - 1;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        } else {
            out.push_back((char)c);
        }
    }
    return out;
}

std::vector<uint8_t> read_file(const std::string & path, int64_t max_bytes) {
    if (path.empty()) {
        throw error("'': empty file name");
    }
    // stat before open: a FIFO would block open() and a device would read forever.
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        const int   e = errno;
        struct stat lst {};
        const bool  link = lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode);
        throw error(path + ": " +
                    (e == ELOOP            ? std::string("symbolic link loop")
                     : e == ENOENT && link ? std::string("dangling symbolic link (its target does not exist)")
                     : e == ENOENT         ? std::string("no such file")
                                           : std::string("cannot read (") + std::strerror(e) + ")"));
    }
    if (!S_ISREG(st.st_mode)) {
        throw error(path + ": not a regular file (" +
                    (S_ISDIR(st.st_mode)                          ? "a folder"
                     : S_ISFIFO(st.st_mode)                       ? "a FIFO"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                     : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                                  : "not a file") +
                    "); only image files are read");
    }
    if (max_bytes > 0 && st.st_size > max_bytes) {
        throw error(path + ": file of " + std::to_string((long long)st.st_size) +
                    " bytes is larger than the limit of " + std::to_string((long long)max_bytes) +
                    " bytes; raise --max-file-size to read it");
    }
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        throw error(path + ": cannot open file (" + std::strerror(errno) + ")");
    }
    std::vector<uint8_t> bytes((size_t)st.st_size);
    size_t               got = 0;
    while (got < bytes.size()) {  // what stat said, no more: a file that grows is not followed
        const ssize_t n = read(fd, bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            const int e = errno;
            close(fd);
            throw error(path + ": read error" +
                        (n < 0 ? std::string(" (") + std::strerror(e) + ")" : " (file shrank)"));
        }
        got += (size_t)n;
    }
    close(fd);
    return bytes;
}

image load_image(const std::string & path, int max_size, const image_limits & limits) {
    const std::vector<uint8_t> bytes = read_file(path, limits.max_file_bytes);
    return decode_image(bytes.data(), bytes.size(), path, max_size, limits);
}

}  // namespace dior
