// Patch 0006 (ggml-base converts F16 rows with F16C / AVX-512 where the CPU has them): the row
// conversion that ggml-blas applies to every F16 weight gives, for each of the 65536 half values,
// in rows of every length and alignment, exactly what the one-value conversion gives.
#include "ggml.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <gtest/gtest.h>
#include <vector>

namespace {

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

TEST(Fp16Row, EveryHalfValueConvertsExactly) {
    std::vector<ggml_fp16_t> x(65536);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = (ggml_fp16_t)i;
    }
    std::vector<float> y(x.size());
    ggml_fp16_to_fp32_row(x.data(), y.data(), (int64_t)x.size());
    int nan_seen = 0;
    for (size_t i = 0; i < x.size(); i++) {
        const float want = ggml_fp16_to_fp32(x[i]);
        if (std::isnan(want)) {  // the payload of a NaN is not part of the contract, NaN is
            ASSERT_TRUE(std::isnan(y[i])) << "half 0x" << std::hex << i;
            nan_seen++;
            continue;
        }
        ASSERT_EQ(bits(y[i]), bits(want)) << "half 0x" << std::hex << i << ": " << y[i] << " vs " << want;
    }
    EXPECT_EQ(nan_seen, 2 * 1023);  // both signs, every non-zero mantissa under the all-ones exponent
    // subnormals, zeros of both signs and infinities are among the values above; spot-check them
    EXPECT_EQ(y[0x0001], std::ldexp(1.0f, -24));
    EXPECT_EQ(bits(y[0x8000]), 0x80000000u);
    EXPECT_TRUE(std::isinf(y[0x7c00]) && y[0x7c00] > 0);
}

TEST(Fp16Row, TailsAndUnalignedRowsMatch) {
    std::vector<ggml_fp16_t> x(200);
    for (size_t i = 0; i < x.size(); i++) {
        x[i] = ggml_fp32_to_fp16(0.37f * (float)i - 11.0f);
    }
    for (int64_t offset = 0; offset < 17; offset++) {
        for (int64_t n = 0; n <= 70; n++) {
            std::vector<float> y((size_t)n + 2, -7.0f);  // the guard values must stay untouched
            ggml_fp16_to_fp32_row(x.data() + offset, y.data() + 1, n);
            ASSERT_EQ(y[0], -7.0f);
            ASSERT_EQ(y[(size_t)n + 1], -7.0f) << "wrote past the row, n = " << n;
            for (int64_t i = 0; i < n; i++) {
                ASSERT_EQ(bits(y[(size_t)i + 1]), bits(ggml_fp16_to_fp32(x[(size_t)(offset + i)])))
                    << "offset " << offset << ", n " << n << ", i " << i;
            }
        }
    }
}

}  // namespace
