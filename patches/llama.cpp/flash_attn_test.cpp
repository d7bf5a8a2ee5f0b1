// Patch 0007 (ggml's tiled CPU flash attention): a tile whose mask is -inf everywhere is skipped on
// the mask's F16 bits, before converting it, and each row's maximum is taken in vector lanes. Both
// are meant to change no result. ggml_flash_attn_ext on the CPU backend, with window masks such as
// Qwen2.5-VL's vision encoder builds (windows of unequal sizes, so that tiles are partly masked),
// finite mask values, ALiBi slopes and rows masked everywhere, against attention in double over
// the same F16-rounded K, V and mask.
#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace {

struct attention_case {
    int              d      = 80;  // Qwen2.5-VL's vision head width
    int              n      = 256;
    int              n_head = 2;
    std::vector<int> windows;              // token counts of consecutive windows; empty: no mask
    bool             finite_bias = false;  // random finite values inside the windows
    int              masked_rows = 0;      // the first rows see nothing at all
    float            max_bias    = 0.0f;   // ALiBi
};

float round_f16(float x) {
    return ggml_fp16_to_fp32(ggml_fp32_to_fp16(x));
}

// Worst |ours - exact| over the output, relative to the largest |V|.
double worst_error(const attention_case & c) {
    const int64_t    d = c.d, n = c.n, h = c.n_head;
    ggml_init_params ip{ 64 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context *   ctx   = ggml_init(ip);
    ggml_tensor *    q     = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, d, n, h);
    ggml_tensor *    k     = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, d, n, h);
    ggml_tensor *    v     = ggml_new_tensor_3d(ctx, GGML_TYPE_F16, d, n, h);
    const bool       with  = !c.windows.empty();
    ggml_tensor *    mask  = with ? ggml_new_tensor_2d(ctx, GGML_TYPE_F16, n, n) : nullptr;
    const float      scale = 1.0f / std::sqrt((float)d);
    ggml_tensor *    out   = ggml_flash_attn_ext(ctx, q, k, v, mask, scale, c.max_bias, 0.0f);
    ggml_flash_attn_ext_set_prec(out, GGML_PREC_F32);
    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);

    ggml_backend_t        cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, cpu);

    std::mt19937                    rng(7 + (unsigned)n);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> qf((size_t)(d * n * h)), kf(qf.size()), vf(qf.size()), mf(with ? (size_t)(n * n) : 0);
    for (auto * x : { &qf, &kf, &vf }) {
        for (auto & e : *x) {
            e = 2.0f * dist(rng);
        }
    }
    std::vector<int> window_of((size_t)n, 0);
    for (int w = 0, at = 0; w < (int)c.windows.size(); at += c.windows[(size_t)w], ++w) {
        for (int i = at; i < std::min<int>(at + c.windows[(size_t)w], (int)n); ++i) {
            window_of[(size_t)i] = w;
        }
    }
    for (int64_t i = 0; with && i < n; ++i) {
        for (int64_t j = 0; j < n; ++j) {
            const bool seen         = i >= c.masked_rows && window_of[(size_t)i] == window_of[(size_t)j];
            mf[(size_t)(i * n + j)] = seen ? (c.finite_bias ? round_f16(dist(rng)) : 0.0f) : -INFINITY;
        }
    }
    std::vector<ggml_fp16_t> kh(kf.size()), vh(vf.size()), mh(mf.size());
    ggml_fp32_to_fp16_row(kf.data(), kh.data(), (int64_t)kf.size());
    ggml_fp32_to_fp16_row(vf.data(), vh.data(), (int64_t)vf.size());
    ggml_fp32_to_fp16_row(mf.data(), mh.data(), (int64_t)mf.size());
    ggml_fp16_to_fp32_row(kh.data(), kf.data(), (int64_t)kf.size());
    ggml_fp16_to_fp32_row(vh.data(), vf.data(), (int64_t)vf.size());
    ggml_backend_tensor_set(q, qf.data(), 0, ggml_nbytes(q));
    ggml_backend_tensor_set(k, kh.data(), 0, ggml_nbytes(k));
    ggml_backend_tensor_set(v, vh.data(), 0, ggml_nbytes(v));
    if (with) {
        ggml_backend_tensor_set(mask, mh.data(), 0, ggml_nbytes(mask));
    }
    EXPECT_EQ(ggml_backend_graph_compute(cpu, gf), GGML_STATUS_SUCCESS);

    // out: [d, n_head, n] (heads and tokens swapped, as ggml's flash attention writes it)
    std::vector<float> got((size_t)ggml_nelements(out));
    ggml_backend_tensor_get(out, got.data(), 0, ggml_nbytes(out));

    const uint32_t n_head_log2 = 1u << (uint32_t)std::floor(std::log2((double)h));
    const double   m0          = std::pow(2.0, -(double)c.max_bias / n_head_log2);
    const double   m1          = std::pow(2.0, -(double)c.max_bias / 2.0 / n_head_log2);
    double         worst = 0, vmax = 0;
    for (float x : vf) {
        vmax = std::max(vmax, (double)std::fabs(x));
    }
    std::vector<double> w((size_t)n);
    for (int64_t hh = 0; hh < h; ++hh) {
        const double slope = c.max_bias > 0
                                 ? (hh < (int64_t)n_head_log2 ? std::pow(m0, (double)hh + 1)
                                                              : std::pow(m1, 2.0 * (double)(hh - n_head_log2) + 1))
                                 : 1.0;
        for (int64_t i = 0; i < n; ++i) {
            double top = -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
                double s = 0;
                for (int64_t l = 0; l < d; ++l) {
                    s += (double)qf[(size_t)((hh * n + i) * d + l)] * kf[(size_t)((hh * n + j) * d + l)];
                }
                const double bias = with ? slope * mf[(size_t)(i * n + j)] : 0.0;
                w[(size_t)j]      = std::isinf(bias) ? -INFINITY : s * scale + bias;
                top               = std::max(top, w[(size_t)j]);
            }
            double sum = 0;
            for (int64_t j = 0; j < n; ++j) {
                w[(size_t)j] = std::isinf(top) ? 0.0 : std::exp(w[(size_t)j] - top);
                sum += w[(size_t)j];
            }
            for (int64_t l = 0; l < d; ++l) {
                double o = 0;
                for (int64_t j = 0; j < n; ++j) {
                    o += w[(size_t)j] * vf[(size_t)((hh * n + j) * d + l)];
                }
                o                 = sum > 0 ? o / sum : 0.0;  // a row that sees nothing gives zeros
                const double ours = got[(size_t)((i * h + hh) * d + l)];
                EXPECT_TRUE(std::isfinite(ours)) << "head " << hh << " row " << i;
                worst = std::max(worst, std::fabs(ours - o) / vmax);
            }
        }
    }
    ggml_backend_buffer_free(buf);
    ggml_backend_free(cpu);
    ggml_free(ctx);
    std::printf("n %lld, %zu windows: worst error %.3g of max |V|\n", (long long)n, c.windows.size(), worst);
    return worst;
}

TEST(FlashAttnTiled, EqualWindowsAsQwenVisionBuildsThem) {
    attention_case c;
    c.windows = { 64, 64, 64, 64 };
    EXPECT_LT(worst_error(c), 1e-5);
}

TEST(FlashAttnTiled, UnequalWindowsMaskTilesInPart) {
    attention_case c;
    c.n       = 300;
    c.windows = { 50, 78, 16, 100, 56 };
    EXPECT_LT(worst_error(c), 1e-5);
}

TEST(FlashAttnTiled, FiniteMaskValuesInsideTheWindows) {
    attention_case c;
    c.windows     = { 40, 130, 86 };
    c.finite_bias = true;
    EXPECT_LT(worst_error(c), 1e-5);
}

TEST(FlashAttnTiled, RowsThatSeeNothingGiveZeros) {
    attention_case c;
    c.windows     = { 128, 128 };
    c.masked_rows = 70;  // more than one tile of queries
    EXPECT_LT(worst_error(c), 1e-5);
}

TEST(FlashAttnTiled, AlibiSlopes) {
    attention_case c;
    c.n_head      = 4;
    c.windows     = { 64, 100, 92 };
    c.finite_bias = true;
    c.max_bias    = 8.0f;
    EXPECT_LT(worst_error(c), 1e-5);
}

TEST(FlashAttnTiled, NoMaskAtAll) {
    attention_case c;
    EXPECT_LT(worst_error(c), 1e-5);
}

}  // namespace
