// Patch 0004 (ggml's tinyBLAS takes any k): matrix products whose inner length is not a multiple of
// the vector width (8 floats with AVX2, 16 with AVX-512), such as Qwen2.5-VL's 3420-wide vision
// FFN, now run in tinyBLAS with a scalar tail. These products, on ggml's CPU backend, against a
// double-precision sum of the same (F16-rounded) inputs.
#include "ggml-backend.h"
#include "ggml.h"

#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <vector>

namespace {

// Worst |ours - exact| / (sum of |terms|) over C = A^T B for A (k x m, type) and B (k x n, F32).
double worst_error(ggml_type type, int64_t k, int64_t m, int64_t n) {
    ggml_init_params ip{ 64 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true };
    ggml_context *   ctx = ggml_init(ip);
    ggml_tensor *    a   = ggml_new_tensor_2d(ctx, type, k, m);
    ggml_tensor *    b   = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, n);
    ggml_tensor *    c   = ggml_mul_mat(ctx, a, b);
    ggml_cgraph *    gf  = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, c);

    ggml_backend_t        cpu = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, cpu);

    std::mt19937                    rng(42 + (unsigned)k);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float>              af((size_t)(k * m)), bf((size_t)(k * n));
    for (auto & v : af) {
        v = dist(rng);
    }
    for (auto & v : bf) {
        v = dist(rng);
    }
    // What the kernel multiplies: F16 weights, and (for F16 weights) B rounded to F16 as well.
    std::vector<ggml_fp16_t> ah(af.size());
    if (type == GGML_TYPE_F16) {
        ggml_fp32_to_fp16_row(af.data(), ah.data(), (int64_t)af.size());
        ggml_fp16_to_fp32_row(ah.data(), af.data(), (int64_t)af.size());
        ggml_backend_tensor_set(a, ah.data(), 0, ggml_nbytes(a));
    } else {
        ggml_backend_tensor_set(a, af.data(), 0, ggml_nbytes(a));
    }
    ggml_backend_tensor_set(b, bf.data(), 0, ggml_nbytes(b));
    if (type == GGML_TYPE_F16) {
        std::vector<ggml_fp16_t> bh(bf.size());
        ggml_fp32_to_fp16_row(bf.data(), bh.data(), (int64_t)bf.size());
        ggml_fp16_to_fp32_row(bh.data(), bf.data(), (int64_t)bf.size());
    }
    EXPECT_EQ(ggml_backend_graph_compute(cpu, gf), GGML_STATUS_SUCCESS);

    std::vector<float> got((size_t)(m * n));
    ggml_backend_tensor_get(c, got.data(), 0, ggml_nbytes(c));
    double worst = 0;
    for (int64_t j = 0; j < n; ++j) {
        for (int64_t i = 0; i < m; ++i) {
            double exact = 0, scale = 0;
            for (int64_t l = 0; l < k; ++l) {
                const double t = (double)af[(size_t)(i * k + l)] * bf[(size_t)(j * k + l)];
                exact += t;
                scale += std::fabs(t);
            }
            worst = std::max(worst, std::fabs(got[(size_t)(j * m + i)] - exact) / scale);
        }
    }
    ggml_backend_buffer_free(buf);
    ggml_backend_free(cpu);
    ggml_free(ctx);
    return worst;
}

TEST(Sgemm, AnyInnerLengthMatchesTheExactProduct) {
    // 3420: Qwen2.5-VL's vision FFN; 5 and 37: shorter than and between vector widths; 1280 and 24:
    // multiples of 8, one of them not of 16.
    for (ggml_type type : { GGML_TYPE_F16, GGML_TYPE_F32 }) {
        for (int64_t k : { 3420, 37, 5, 1280, 24 }) {
            const double err = worst_error(type, k, 64, 48);
            // F32 sums of k terms: float32 rounding, far below the 1e-3 or more of a lost tail term.
            EXPECT_LE(err, 1e-5) << ggml_type_name(type) << " k=" << k;
        }
    }
}

}  // namespace
