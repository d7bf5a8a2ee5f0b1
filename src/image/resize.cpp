// Resampling exactly as Pillow does it (libImaging/Resample.c): separable, horizontal pass first,
// coefficients in double, then fixed point with 22 fractional bits for 8-bit data. Two of
// Pillow's filters: Lanczos (the reference's downscale), bilinear (Hugging Face's Gemma 3 processor) and bicubic
// (Hugging Face's Qwen2-VL image processor).
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dior {
namespace {

constexpr int    precision_bits  = 32 - 8 - 2;
constexpr double lanczos_support = 3.0;

double sinc(double x) {
    if (x == 0.0) {
        return 1.0;
    }
    x *= M_PI;
    return std::sin(x) / x;
}

double lanczos(double x) {
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

double bicubic(double x) {  // a = -0.5
    const double a = -0.5;
    x              = x < 0 ? -x : x;
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
        return (((x - 5) * x + 8) * x - 4) * a;
    }
    return 0.0;
}

double bilinear(double x) {  // Pillow's triangle filter
    x = x < 0 ? -x : x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

struct filter {
    double (*fn)(double);
    double support;
};

constexpr filter k_lanczos{ lanczos, 3.0 };
constexpr filter k_bicubic{ bicubic, 2.0 };
constexpr filter k_bilinear{ bilinear, 1.0 };

// Per output pixel: the first input pixel, how many input pixels, and their fixed-point weights.
struct coeffs {
    int              ksize = 0;
    std::vector<int> bounds;  // (xmin, count) per output pixel
    std::vector<int> k;       // ksize weights per output pixel
};

coeffs precompute(int in_size, int out_size, const filter & f) {
    const double scale       = static_cast<double>(in_size) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support     = f.support * filterscale;

    coeffs c;
    c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    c.bounds.resize(static_cast<size_t>(out_size) * 2);
    c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);

    std::vector<double> w(c.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss     = 1.0 / filterscale;
        int          xmin   = static_cast<int>(center - support + 0.5);
        if (xmin < 0) {
            xmin = 0;
        }
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) {
            xmax = in_size;
        }
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            w[x] = f.fn((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < xmax; ++x) {
            const double v                             = ww != 0.0 ? w[x] / ww : w[x];
            const double fp                            = v * (1 << precision_bits);
            c.k[static_cast<size_t>(xx) * c.ksize + x] = static_cast<int>(v < 0 ? -0.5 + fp : 0.5 + fp);
        }
        c.bounds[xx * 2]     = xmin;
        c.bounds[xx * 2 + 1] = xmax;
    }
    return c;
}

uint8_t clip8(int v) {
    v >>= precision_bits;
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

}  // namespace

namespace {

image resize_pil(const image & img, int width, int height, const filter & f) {
    if (width <= 0 || height <= 0) {
        throw error("resize " + img.source + ": target size must be positive");
    }
    if (width == img.width && height == img.height) {
        return img;
    }
    const coeffs h = precompute(img.width, width, f);
    const coeffs v = precompute(img.height, height, f);

    // Rows of the source that the vertical pass reads.
    const int y_first = v.bounds[0];
    const int y_last  = v.bounds[(height - 1) * 2] + v.bounds[(height - 1) * 2 + 1];

    // Horizontal pass (Pillow skips it when the width does not change).
    const bool           need_h = width != img.width;
    std::vector<uint8_t> tmp;
    const uint8_t *      src       = img.rgb.data();
    int                  src_w     = img.width;
    int                  row_shift = 0;
    if (need_h) {
        const int rows = y_last - y_first;
        tmp.resize(static_cast<size_t>(width) * rows * 3);
        for (int yy = 0; yy < rows; ++yy) {
            const uint8_t * in  = img.rgb.data() + static_cast<size_t>(yy + y_first) * img.width * 3;
            uint8_t *       out = tmp.data() + static_cast<size_t>(yy) * width * 3;
            for (int xx = 0; xx < width; ++xx) {
                const int   xmin = h.bounds[xx * 2], n = h.bounds[xx * 2 + 1];
                const int * k  = &h.k[static_cast<size_t>(xx) * h.ksize];
                int         s0 = 1 << (precision_bits - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < n; ++x) {
                    const uint8_t * p = in + (x + xmin) * 3;
                    s0 += p[0] * k[x];
                    s1 += p[1] * k[x];
                    s2 += p[2] * k[x];
                }
                out[xx * 3]     = clip8(s0);
                out[xx * 3 + 1] = clip8(s1);
                out[xx * 3 + 2] = clip8(s2);
            }
        }
        src       = tmp.data();
        src_w     = width;
        row_shift = y_first;
    }

    image out;
    out.source = img.source;
    out.width  = width;
    out.height = height;
    if (height == img.height) {  // no vertical pass
        out.rgb.assign(src, src + static_cast<size_t>(width) * height * 3);
        return out;
    }
    out.rgb.resize(static_cast<size_t>(width) * height * 3);
    for (int yy = 0; yy < height; ++yy) {
        const int   ymin = v.bounds[yy * 2] - row_shift, n = v.bounds[yy * 2 + 1];
        const int * k = &v.k[static_cast<size_t>(yy) * v.ksize];
        uint8_t *   o = out.rgb.data() + static_cast<size_t>(yy) * width * 3;
        for (int xc = 0; xc < width * 3; ++xc) {
            int s = 1 << (precision_bits - 1);
            for (int y = 0; y < n; ++y) {
                s += src[static_cast<size_t>(y + ymin) * src_w * 3 + xc] * k[y];
            }
            o[xc] = clip8(s);
        }
    }
    return out;
}

}  // namespace

image resize_lanczos(const image & img, int width, int height) {
    return resize_pil(img, width, height, k_lanczos);
}

image resize_bicubic(const image & img, int width, int height) {
    return resize_pil(img, width, height, k_bicubic);
}

image resize_bilinear(const image & img, int width, int height) {
    return resize_pil(img, width, height, k_bilinear);
}

}  // namespace dior

// PyTorch's CPU kernel for uint8 antialiased bicubic (aten/src/ATen/native/cpu/UpSampleKernel.cpp:
// compute_index_ranges_int16_weights, then the separable integer passes), which torchvision's
// resize and so Hugging Face's fast image processors run. It differs from Pillow's in two ways:
// the weights are int16 with a precision chosen from the largest weight (Pillow: 22 bits in int32),
// and the bicubic polynomial for 1 <= |x| < 2 is evaluated in another order.
namespace dior {
namespace {

double torch_cubic(double x) {  // Keys, a = -0.5, as torch's aa_filter writes it
    const double a = -0.5;
    x              = x < 0 ? -x : x;
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    }
    if (x < 2.0) {
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    }
    return 0.0;
}

struct torch_coeffs {
    int                  ksize     = 0;
    int                  precision = 0;
    std::vector<int>     bounds;  // (xmin, count) per output pixel
    std::vector<int16_t> k;       // ksize weights per output pixel
};

torch_coeffs torch_precompute(int in_size, int out_size) {
    const double scale    = (double)in_size / (double)out_size;
    const double support  = scale >= 1.0 ? 2.0 * scale : 2.0;
    const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;

    torch_coeffs c;
    c.ksize = (int)std::ceil(support) * 2 + 1;
    c.bounds.resize((size_t)out_size * 2);
    std::vector<double> w((size_t)out_size * c.ksize, 0.0);
    double              w_max = 0.0;
    for (int i = 0; i < out_size; ++i) {
        const double center = scale * (i + 0.5);
        int          xmin   = std::max((int)(center - support + 0.5), 0);
        int          n      = std::min((int)(center + support + 0.5), in_size) - xmin;
        n                   = std::min(std::max(n, 0), c.ksize);
        double * wi         = &w[(size_t)i * c.ksize];
        double   total      = 0.0;
        for (int j = 0; j < n; ++j) {
            wi[j] = torch_cubic(((double)(j + xmin) - center + 0.5) * invscale);
            total += wi[j];
        }
        if (total != 0.0) {
            for (int j = 0; j < n; ++j) {
                wi[j] /= total;
                w_max = std::max(w_max, wi[j]);
            }
        }
        c.bounds[(size_t)i * 2]     = xmin;
        c.bounds[(size_t)i * 2 + 1] = n;
    }
    // The largest precision at which the largest weight still fits in an int16.
    c.precision = 0;
    while (c.precision < 22 && (int)(0.5 + w_max * (double)(1 << (c.precision + 1))) < (1 << 15)) {
        ++c.precision;
    }
    c.k.resize(w.size());
    for (size_t j = 0; j < w.size(); ++j) {
        const double v = w[j] * (double)(1 << c.precision);
        c.k[j]         = (int16_t)(int)(v < 0 ? -0.5 + v : 0.5 + v);
    }
    return c;
}

// One separable pass along x (horizontal) or y (vertical), 8-bit in and out.
std::vector<uint8_t> torch_pass(const std::vector<uint8_t> & src, int w, int h, int out_size, bool horizontal) {
    const int            in_size = horizontal ? w : h;
    const torch_coeffs   c       = torch_precompute(in_size, out_size);
    const int            ow = horizontal ? out_size : w, oh = horizontal ? h : out_size;
    std::vector<uint8_t> out((size_t)ow * oh * 3);
    const int64_t        half = c.precision > 0 ? (int64_t)1 << (c.precision - 1) : 0;
    for (int y = 0; y < oh; ++y) {
        for (int x = 0; x < ow; ++x) {
            const int       i    = horizontal ? x : y;
            const int       xmin = c.bounds[(size_t)i * 2], n = c.bounds[(size_t)i * 2 + 1];
            const int16_t * k = &c.k[(size_t)i * c.ksize];
            for (int ch = 0; ch < 3; ++ch) {
                int64_t acc = half;
                for (int j = 0; j < n; ++j) {
                    const size_t at = horizontal ? ((size_t)y * w + (size_t)(xmin + j)) * 3 + ch
                                                 : ((size_t)(xmin + j) * w + (size_t)x) * 3 + ch;
                    acc += (int64_t)src[at] * k[j];
                }
                acc >>= c.precision;
                out[((size_t)y * ow + x) * 3 + ch] = (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
            }
        }
    }
    return out;
}

}  // namespace

image resize_bicubic_torch(const image & img, int width, int height) {
    if (width <= 0 || height <= 0) {
        throw error("resize " + img.source + ": target size must be positive");
    }
    image out  = img;
    out.width  = width;
    out.height = height;
    if (width != img.width) {  // horizontal pass first, as torch; each pass only where the size changes
        out.rgb = torch_pass(out.rgb, img.width, img.height, width, true);
    }
    if (height != img.height) {
        out.rgb = torch_pass(out.rgb, width, img.height, height, false);
    }
    return out;
}

}  // namespace dior
