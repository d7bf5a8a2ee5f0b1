// vector_index against a brute-force scan in double precision.
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>
#include <random>

namespace {

dior::matrix random_matrix(size_t rows, size_t cols, unsigned seed) {
    std::mt19937                    rng(seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    dior::matrix                    x;
    x.rows = rows;
    x.cols = cols;
    x.data.resize(rows * cols);
    for (auto & v : x.data) {
        v = g(rng);
    }
    return x;
}

// (distance, row) of every row, nearest first, computed in double.
std::vector<std::pair<double, size_t>> brute(const dior::matrix & x, const std::vector<float> & q, dior::metric m) {
    std::vector<std::pair<double, size_t>> out;
    double                                 qn = 0;
    for (float v : q) {
        qn += (double)v * v;
    }
    for (size_t r = 0; r < x.rows; ++r) {
        double d2 = 0, ip = 0, rn = 0;
        for (size_t j = 0; j < x.cols; ++j) {
            const double a = x.data[r * x.cols + j], b = q[j];
            d2 += (a - b) * (a - b);
            ip += a * b;
            rn += a * a;
        }
        out.emplace_back(m == dior::metric::l2 ? std::sqrt(d2) : 1.0 - ip / std::sqrt(rn * qn), r);
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(VectorIndex, ExactNeighboursAndDistancesForBothMetrics) {
    const auto x = random_matrix(500, 64, 1);
    for (auto m : { dior::metric::l2, dior::metric::cosine }) {
        dior::vector_index ix(x, m);
        EXPECT_EQ(ix.size(), 500u);
        EXPECT_EQ(ix.dim(), 64u);
        const auto q   = random_matrix(1, 64, 7).data;
        const auto got = ix.search(q.data(), q.size(), 10);
        const auto exp = brute(x, q, m);
        ASSERT_EQ(got.size(), 10u);
        for (size_t i = 0; i < 10; ++i) {
            EXPECT_EQ(got[i].row, exp[i].second) << dior::metric_name(m) << " rank " << i;
            EXPECT_NEAR(got[i].distance, exp[i].first, 1e-4 * std::max(1.0, exp[i].first));
        }
    }
}

TEST(VectorIndex, AStoredQueryIsLeftOutAndItsVectorReadBack) {
    const auto         x = random_matrix(50, 16, 2);
    dior::vector_index ix(x, dior::metric::l2);
    const auto         v = ix.vector(17);
    EXPECT_EQ(v, std::vector<float>(x.data.begin() + 17 * 16, x.data.begin() + 18 * 16));
    const auto with    = ix.search(v.data(), v.size(), 3);
    const auto without = ix.search(v.data(), v.size(), 3, 17);
    EXPECT_EQ(with[0].row, 17u);
    EXPECT_EQ(with[0].distance, 0.0f);
    ASSERT_EQ(without.size(), 3u);
    EXPECT_EQ(without[0].row, with[1].row);
    EXPECT_EQ(without[1].row, with[2].row);
    for (const auto & nb : without) {
        EXPECT_NE(nb.row, 17u);
    }
    EXPECT_THROW(ix.vector(50), dior::error);
}

TEST(VectorIndex, EqualDistancesComeInRowOrderAndKIsCappedAtTheRowsThereAre) {
    dior::matrix x;
    x.rows = 6;
    x.cols = 2;
    x.data = { 1, 0, 0, 1, -1, 0, 0, -1, 2, 0, 1, 0 };  // rows 0..3 at distance 1 from the origin; 5 equals 0
    dior::vector_index ix(x, dior::metric::l2);
    const float        origin[2] = { 0, 0 };
    const auto         all       = ix.search(origin, 2, 100);
    ASSERT_EQ(all.size(), 6u);
    const size_t order[] = { 0, 1, 2, 3, 5, 4 };
    for (size_t i = 0; i < 6; ++i) {
        EXPECT_EQ(all[i].row, order[i]) << i;
    }
    EXPECT_TRUE(ix.search(origin, 2, 0).empty());
}

TEST(VectorIndex, BadInputIsRefusedWithAMessage) {
    auto x    = random_matrix(4, 8, 3);
    x.data[5] = NAN;
    EXPECT_THROW(dior::vector_index(x, dior::metric::l2), dior::error);
    const auto         ok = random_matrix(4, 8, 3);
    dior::vector_index ix(ok, dior::metric::l2);
    const float        q[4] = { 1, 2, 3, 4 };
    try {
        ix.search(q, 4, 2);
        FAIL() << "a query of the wrong width was accepted";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("4 values"), std::string::npos) << e.what();
    }
    std::vector<float> nan_q(8, 0.0f);
    nan_q[2] = INFINITY;
    EXPECT_THROW(ix.search(nan_q.data(), 8, 2), dior::error);
    EXPECT_FALSE(dior::parse_metric("manhattan").has_value());
    EXPECT_EQ(dior::parse_metric("cosine"), dior::metric::cosine);
    dior::vector_index empty(dior::matrix{ 0, 8, {} }, dior::metric::cosine);
    EXPECT_TRUE(empty.search(ok.data.data(), 8, 5).empty());
}

}  // namespace
