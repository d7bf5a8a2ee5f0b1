// InDiReCT (Kobs et al., WACV 2023) as the reference runs it (SPEC 2): the DimRedRecon fit of a
// projection U (k x d) on the normalised CLIP text features of an aspect's condition texts, then
// image vector = normalize(U . normalize(CLIP image feature)).
//
// The fit minimises mean_i arccos(x_i . xhat_i), v_i = normalize(U x_i), xhat_i = normalize(U^T v_i),
// by full-batch Adam; the gradient is written out by hand (no autograd here):
//   dL/dc_i = -1 / sqrt(1 - c_i^2) / n   (0 where c_i is clamped: the "safe" arccos)
//   dH = gc X,  dW = (dH - H <H, dH>) / |W|,  dU += V^T dW,  dV = dW U^T,
//   dZ = (dV - V <V, dV>) / |Z|,  dU += dZ^T X        (row-wise <.,.> and norms)
#include "dior.h"

#include <cblas.h>
#include <cmath>
#include <limits>
#include <random>

namespace dior {
namespace {

// Row-normalises a (rows x cols) in place; returns the norms.
std::vector<double> normalize_rows(std::vector<double> & a, size_t rows, size_t cols) {
    std::vector<double> norms(rows);
    for (size_t r = 0; r < rows; ++r) {
        double s = 0;
        for (size_t c = 0; c < cols; ++c) {
            s += a[r * cols + c] * a[r * cols + c];
        }
        norms[r] = std::sqrt(s);
        for (size_t c = 0; c < cols; ++c) {
            a[r * cols + c] /= norms[r];
        }
    }
    return norms;
}

// out (m x n) = a (m x k) . b^T (n x k), or a . b (k x n) when b_transposed is false.
void gemm(const std::vector<double> & a, const std::vector<double> & b, std::vector<double> & out, size_t m, size_t n,
          size_t k, bool a_transposed, bool b_transposed) {
    out.assign(m * n, 0.0);
    cblas_dgemm(CblasRowMajor, a_transposed ? CblasTrans : CblasNoTrans, b_transposed ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0, a.data(), a_transposed ? (int)m : (int)k, b.data(),
                b_transposed ? (int)k : (int)n, 0.0, out.data(), (int)n);
}

}  // namespace

double dimredrecon_loss(const matrix & texts, const matrix & u, matrix * grad) {
    const size_t n = texts.rows, d = texts.cols, k = u.rows;
    if (u.cols != d || n == 0 || k == 0) {
        throw error("InDiReCT: " + std::to_string(n) + " texts of width " + std::to_string(d) + " and U of " +
                    std::to_string(k) + " x " + std::to_string(u.cols) + " do not fit");
    }
    const std::vector<double> X(texts.data.begin(), texts.data.end()), U(u.data.begin(), u.data.end());
    std::vector<double>       Z, W;
    gemm(X, U, Z, n, k, d, false, true);  // Z = X U^T   (n x k)
    std::vector<double>       V  = Z;
    const std::vector<double> za = normalize_rows(V, n, k);
    gemm(V, U, W, n, d, k, false, false);  // W = V U     (n x d)
    std::vector<double>       H  = W;
    const std::vector<double> wb = normalize_rows(H, n, d);

    const double        lim  = 1.0 - k_dimredrecon_clamp;
    double              loss = 0;
    std::vector<double> gc(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
        double c = 0;
        for (size_t j = 0; j < d; ++j) {
            c += X[i * d + j] * H[i * d + j];
        }
        const double cc = std::min(std::max(c, -lim), lim);
        loss += std::acos(cc);
        gc[i] = (c > -lim && c < lim) ? -1.0 / std::sqrt(1.0 - c * c) / (double)n : 0.0;
    }
    loss /= (double)n;
    if (!grad) {
        return loss;
    }
    // dW = (dH - H <H, dH>) / |W| with dH = gc X
    std::vector<double> dW(n * d);
    for (size_t i = 0; i < n; ++i) {
        double hd = 0;
        for (size_t j = 0; j < d; ++j) {
            hd += H[i * d + j] * gc[i] * X[i * d + j];
        }
        for (size_t j = 0; j < d; ++j) {
            dW[i * d + j] = (gc[i] * X[i * d + j] - H[i * d + j] * hd) / wb[i];
        }
    }
    std::vector<double> dU, dV, dU2;
    gemm(V, dW, dU, k, d, n, true, false);  // dU  = V^T dW   (k x d)
    gemm(dW, U, dV, n, k, d, false, true);  // dV  = dW U^T   (n x k)
    std::vector<double> dZ(n * k);
    for (size_t i = 0; i < n; ++i) {
        double vd = 0;
        for (size_t j = 0; j < k; ++j) {
            vd += V[i * k + j] * dV[i * k + j];
        }
        for (size_t j = 0; j < k; ++j) {
            dZ[i * k + j] = (dV[i * k + j] - V[i * k + j] * vd) / za[i];
        }
    }
    gemm(dZ, X, dU2, k, d, n, true, false);  // dU += dZ^T X
    grad->rows = k;
    grad->cols = d;
    grad->data.resize(k * d);
    for (size_t j = 0; j < k * d; ++j) {
        grad->data[j] = (float)(dU[j] + dU2[j]);
    }
    return loss;
}

dimredrecon_result fit_dimredrecon(const matrix & texts, const dimredrecon_params & p, const matrix * init) {
    const size_t d = texts.cols, k = (size_t)p.components;
    matrix       u;
    if (init) {
        u = *init;
    } else {  // N(0, 0.1^2), seeded
        u.rows = k;
        u.cols = d;
        u.data.resize(k * d);
        std::mt19937_64                  rng(p.seed);
        std::normal_distribution<double> dist(0.0, 0.1);
        for (float & x : u.data) {
            x = (float)dist(rng);
        }
    }
    // Adam as PyTorch's (betas 0.9 / 0.999, eps 1e-8, no weight decay), state in double.
    const double        b1 = 0.9, b2 = 0.999, eps = 1e-8;
    std::vector<double> m(u.data.size(), 0.0), v(u.data.size(), 0.0), w(u.data.begin(), u.data.end());
    dimredrecon_result  out;
    out.best_loss = std::numeric_limits<double>::infinity();
    matrix grad;
    int    since = 0;
    for (int it = 0; it < p.max_iter; ++it) {
        const double loss = dimredrecon_loss(texts, u, &grad);
        out.loss.push_back(loss);
        if (loss < out.best_loss) {
            out.best_loss = loss;
            out.best_iter = it;
            out.u         = u;
            since         = 0;
        } else if (++since >= p.patience) {
            break;
        }
        const int    t   = it + 1;
        const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
        for (size_t j = 0; j < w.size(); ++j) {
            const double g = grad.data[j];
            m[j]           = b1 * m[j] + (1.0 - b1) * g;
            v[j]           = b2 * v[j] + (1.0 - b2) * g * g;
            w[j] -= (p.lr / bc1) * m[j] / (std::sqrt(v[j]) / std::sqrt(bc2) + eps);
            u.data[j] = (float)w[j];
        }
    }
    return out;
}

std::vector<float> indirect_embed(const matrix & u, const std::vector<float> & image_feature) {
    if (image_feature.size() != u.cols) {
        throw error("InDiReCT: an image feature of width " + std::to_string(image_feature.size()) +
                    " does not fit U of width " + std::to_string(u.cols));
    }
    double n = 0;
    for (float x : image_feature) {
        n += (double)x * x;
    }
    n = std::sqrt(n);
    std::vector<double> y(u.rows, 0.0);
    double              yn = 0;
    for (size_t r = 0; r < u.rows; ++r) {
        for (size_t c = 0; c < u.cols; ++c) {
            y[r] += (double)u.data[r * u.cols + c] * image_feature[c] / n;
        }
        yn += y[r] * y[r];
    }
    yn = std::sqrt(yn);
    std::vector<float> out(u.rows);
    for (size_t r = 0; r < u.rows; ++r) {
        out[r] = (float)(y[r] / yn);
    }
    return out;
}

}  // namespace dior
