// JPEG decoding as Pillow does it: libjpeg-turbo (the library Pillow's wheels bundle) with its
// default settings (islow IDCT, fancy upsampling), Pillow's colour handling for convert("RGB"):
//   1 component   -> grey, replicated to R, G and B
//   3 components  -> libjpeg's RGB output (YCbCr converted by libjpeg, Adobe RGB kept)
//   4 components  -> libjpeg's CMYK output (YCCK converted by libjpeg), inverted as Adobe files
//                    store it (Pillow's rawmode "CMYK;I"), then Pillow's cmyk2rgb
// No EXIF rotation: the reference applies none. A truncated file is refused, as Pillow refuses
// it by default ("image file is truncated"); other recoverable libjpeg warnings are ignored, as
// Pillow ignores them.
#include "image/jpeg.h"

#include "dior.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <jerror.h>  // after jpeglib.h, which it needs
#include <jpeglib.h>
#include <string>
#include <vector>

namespace dior {
namespace {

struct error_mgr {
    jpeg_error_mgr pub;
    jmp_buf        jump;
    char           message[JMSG_LENGTH_MAX] = {};
    bool           truncated                = false;
};

void on_error(j_common_ptr cinfo) {
    auto * err = reinterpret_cast<error_mgr *>(cinfo->err);
    cinfo->err->format_message(cinfo, err->message);
    std::longjmp(err->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
    auto * err = reinterpret_cast<error_mgr *>(cinfo->err);
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        err->truncated = true;  // libjpeg pads the missing data and goes on; Pillow refuses
    }
}

// Pillow's CLIP8(nk - MULDIV255(c, nk)) with nk = 255 - k.
uint8_t cmyk_channel(int c, int k) {
    const int nk  = 255 - k;
    int       tmp = c * nk + 128;
    tmp           = ((tmp >> 8) + tmp) >> 8;
    const int v   = nk - tmp;
    return (uint8_t)(v <= 0 ? 0 : v < 256 ? v : 255);
}

}  // namespace

bool is_jpeg(const uint8_t * data, size_t size) {
    return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

image decode_jpeg(const uint8_t * data, size_t size, const std::string & source, int64_t max_pixels) {
    jpeg_decompress_struct cinfo{};
    error_mgr              err;
    cinfo.err            = jpeg_std_error(&err.pub);
    err.pub.error_exit   = on_error;
    err.pub.emit_message = on_message;
    image                img;  // declared before setjmp: nothing with a destructor is created after it
    std::vector<uint8_t> row;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        throw error(source + ": cannot decode image (JPEG: " + err.message + "); the file is damaged");
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    const int64_t n_pixels = (int64_t)cinfo.image_width * cinfo.image_height;
    if (max_pixels > 0 && n_pixels > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        throw error(source + ": " + pixel_limit_message(cinfo.image_width, cinfo.image_height, max_pixels));
    }
    const int n_comp = cinfo.num_components;
    if (n_comp == 1) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (n_comp == 3) {
        cinfo.out_color_space = JCS_RGB;
    } else if (n_comp == 4) {
        cinfo.out_color_space = JCS_CMYK;
    } else {
        jpeg_destroy_decompress(&cinfo);
        throw error(source + ": JPEG with " + std::to_string(n_comp) +
                    " components; only grey, RGB/YCbCr and CMYK/YCCK are supported");
    }
    cinfo.dct_method          = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);

    const size_t w = cinfo.output_width, h = cinfo.output_height, c = (size_t)cinfo.output_components;
    img.source = source;
    img.width  = (int)w;
    img.height = (int)h;
    img.rgb.resize(w * h * 3);
    row.resize(w * c);
    while (cinfo.output_scanline < cinfo.output_height) {
        const size_t y   = cinfo.output_scanline;
        JSAMPROW     ptr = row.data();
        if (jpeg_read_scanlines(&cinfo, &ptr, 1) != 1) {
            break;
        }
        uint8_t * out = img.rgb.data() + y * w * 3;
        for (size_t x = 0; x < w; ++x) {
            const uint8_t * p = row.data() + x * c;
            if (c == 1) {
                out[x * 3] = out[x * 3 + 1] = out[x * 3 + 2] = p[0];
            } else if (c == 3) {
                out[x * 3]     = p[0];
                out[x * 3 + 1] = p[1];
                out[x * 3 + 2] = p[2];
            } else {  // Adobe CMYK is stored inverted: Pillow reads it as "CMYK;I"
                const int k    = 255 - p[3];
                out[x * 3]     = cmyk_channel(255 - p[0], k);
                out[x * 3 + 1] = cmyk_channel(255 - p[1], k);
                out[x * 3 + 2] = cmyk_channel(255 - p[2], k);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (err.truncated) {
        throw error(source + ": the JPEG file is truncated (image data ends early); Pillow refuses it too");
    }
    return img;
}

}  // namespace dior

namespace dior {

std::vector<uint8_t> encode_jpeg(const image & img, int quality) {
    if (img.width <= 0 || img.height <= 0 || img.rgb.size() != (size_t)img.width * img.height * 3) {
        throw error(img.source + ": cannot encode an empty or malformed image as JPEG");
    }
    jpeg_compress_struct cinfo{};
    error_mgr            err;
    cinfo.err            = jpeg_std_error(&err.pub);
    err.pub.error_exit   = on_error;
    err.pub.emit_message = on_message;
    unsigned char * buf  = nullptr;  // libjpeg allocates it; freed below on every path
    unsigned long   size = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        std::free(buf);
        throw error(img.source + ": cannot encode JPEG (" + err.message + ")");
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buf, &size);
    cinfo.image_width      = (JDIMENSION)img.width;
    cinfo.image_height     = (JDIMENSION)img.height;
    cinfo.input_components = 3;
    cinfo.in_color_space   = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(img.rgb.data() + (size_t)cinfo.next_scanline * img.width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    std::vector<uint8_t> out(buf, buf + size);
    jpeg_destroy_compress(&cinfo);
    std::free(buf);
    return out;
}

std::vector<uint8_t> thumbnail_jpeg(const std::string & path, int max_side, const image_limits & limits) {
    return encode_jpeg(load_image(path, max_side, limits), 80);
}

}  // namespace dior
