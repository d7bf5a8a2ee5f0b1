// InDiReCT's DimRedRecon against a PyTorch implementation of SPEC 2 (tests/oracle/indirect_fit.py):
// the same texts and initial U give the same loss curve, the same best iteration and image vectors.
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

fs::path oracle_dir() {
    return fs::path(DIOR_TEST_DATA_DIR) / "indirect";
}

// The analytic gradient against central differences of the loss.
TEST(DimRedRecon, GradientMatchesFiniteDifferences) {
    dior::matrix x{ 9, 12, {} }, u{ 4, 12, {} };
    for (size_t i = 0; i < x.rows; ++i) {
        double n = 0;
        for (size_t j = 0; j < x.cols; ++j) {
            const float v = (float)std::sin(1.7 * (double)(i * 13 + j) + 0.3);
            x.data.push_back(v);
            n += v * v;
        }
        for (size_t j = 0; j < x.cols; ++j) {
            x.data[i * x.cols + j] /= (float)std::sqrt(n);
        }
    }
    for (size_t j = 0; j < u.rows * u.cols; ++j) {
        u.data.push_back((float)(0.1 * std::cos(0.9 * (double)j)));
    }
    dior::matrix grad;
    dior::dimredrecon_loss(x, u, &grad);
    double worst = 0;
    for (size_t j = 0; j < u.data.size(); ++j) {
        const float  h  = 1e-3f;
        dior::matrix up = u, dn = u;
        up.data[j] += h;
        dn.data[j] -= h;
        const double fd = (dior::dimredrecon_loss(x, up) - dior::dimredrecon_loss(x, dn)) / (up.data[j] - dn.data[j]);
        worst           = std::max(worst, std::fabs(fd - grad.data[j]) / (std::fabs(fd) + 1e-3));
    }
    EXPECT_LT(worst, 1e-3);
}

TEST(DimRedRecon, FitMatchesPyTorch) {
    const dior::matrix   x    = dior::read_npy((oracle_dir() / "texts.npy").string());
    const dior::matrix   u0   = dior::read_npy((oracle_dir() / "u0.npy").string());
    const dior::matrix   want = dior::read_npy((oracle_dir() / "best_u.npy").string());
    std::ifstream        f(oracle_dir() / "fit.json");
    const nlohmann::json fit   = nlohmann::json::parse(f);
    const auto           curve = fit["loss"].get<std::vector<double>>();

    dior::dimredrecon_params p;
    p.components   = (int)u0.rows;
    const auto res = dior::fit_dimredrecon(x, p, &u0);

    // The first 200 iterations of the loss curve within 1e-4 relative.
    ASSERT_GE(res.loss.size(), 200u);
    ASSERT_GE(curve.size(), 200u);
    double worst = 0;
    for (size_t i = 0; i < 200; ++i) {
        worst = std::max(worst, std::fabs(res.loss[i] - curve[i]) / curve[i]);
    }
    std::printf(
        "loss curve, first 200 iterations: worst relative difference %.2e; iterations %zu (PyTorch %zu), "
        "best %.6f at %d (PyTorch %.6f at %d)\n",
        worst, res.loss.size(), curve.size(), res.best_loss, res.best_iter, fit["best_loss"].get<double>(),
        fit["best_iter"].get<int>());
    EXPECT_LT(worst, 1e-4);
    // The whole fit: the best loss within 1e-4 relative (its iteration may move a little where the
    // curve is flat; float32 in PyTorch, double here).
    EXPECT_NEAR(res.best_loss, fit["best_loss"].get<double>(), 1e-4 * fit["best_loss"].get<double>());

    // Image vectors with the best U: stated bound cos >= 0.999 against PyTorch's.
    const dior::matrix imgs = dior::read_npy((oracle_dir() / "images.npy").string());
    const dior::matrix vecs = dior::read_npy((oracle_dir() / "image_vectors.npy").string());
    for (size_t i = 0; i < imgs.rows; ++i) {
        const std::vector<float> f_i(imgs.data.begin() + (long)(i * imgs.cols),
                                     imgs.data.begin() + (long)((i + 1) * imgs.cols));
        const auto               ours = dior::indirect_embed(res.u, f_i);
        // with PyTorch's own best U: the projection alone, exact to float rounding
        const auto exact = dior::indirect_embed(want, f_i);
        double     dot = 0, dot_exact = 0;
        for (size_t j = 0; j < ours.size(); ++j) {
            dot += (double)ours[j] * vecs.data[i * vecs.cols + j];
            dot_exact += (double)exact[j] * vecs.data[i * vecs.cols + j];
        }
        EXPECT_GT(dot, 0.999) << "image " << i;
        EXPECT_GT(dot_exact, 1.0 - 1e-6) << "image " << i;
    }
}

TEST(DimRedRecon, StopsOnPatienceAndKeepsTheBest) {
    const dior::matrix       x = dior::read_npy((oracle_dir() / "texts.npy").string());
    dior::dimredrecon_params p;
    p.components   = 8;
    p.patience     = 5;
    p.seed         = 3;
    const auto res = dior::fit_dimredrecon(x, p);
    EXPECT_EQ(res.u.rows, 8u);
    EXPECT_EQ(res.loss.size(), (size_t)res.best_iter + 6);  // best, then 5 without improvement
    for (double l : res.loss) {
        EXPECT_GE(l, res.best_loss);
    }
    EXPECT_DOUBLE_EQ(dior::dimredrecon_loss(x, res.u), res.best_loss);
    const auto again = dior::fit_dimredrecon(x, p);  // seeded: the same fit
    EXPECT_EQ(again.u.data, res.u.data);
}

}  // namespace
