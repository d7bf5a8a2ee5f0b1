// Exact k-nearest neighbours and the retrieval metrics of pytorch-metric-learning 2.9.
//
// Distances follow faiss' IndexFlatL2, which PML uses: |q|^2 + |r|^2 - 2 q.r in float32 (negative
// round-off clamped to 0), computed block by block with one SGEMM per block of queries, so memory
// stays bounded (about 256 MB of distances at a time) for any N. Neighbours are ordered by
// (distance, index) and the query itself is left out by its index.
//
// Where this can differ from PML: faiss does not order exact ties by index, its GEMM rounds the
// distance to a bit-identical vector (a duplicate image) differently from ours, and PML drops the
// first neighbour faiss returns as "the query itself". So for a query with bit-identical
// neighbours of other labels P@1 and AP@R may differ; each such query moves a metric by at most
// 1 / (number of queries) (README, "dior eval"; asserted in eval_test.cpp).
#include "dior.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <limits>
#include <map>

namespace dior {

void knn(const matrix & x, size_t k, std::vector<int64_t> & out) {
    const size_t n = x.rows, d = x.cols;
    k = std::min(k, n > 0 ? n - 1 : 0);
    out.assign(n * k, -1);
    if (n == 0 || k == 0) {
        return;
    }
    std::vector<float> norms(n);
    for (size_t i = 0; i < n; ++i) {
        float s = 0;
        for (size_t j = 0; j < d; ++j) {
            s += x.data[i * d + j] * x.data[i * d + j];
        }
        norms[i] = s;
    }
    const size_t       block = std::max<size_t>(1, std::min<size_t>(n, (64u << 20) / n));
    std::vector<float> ip(block * n);
    for (size_t q0 = 0; q0 < n; q0 += block) {
        const size_t nq = std::min(block, n - q0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)n, (int)d, 1.0f, &x.data[q0 * d], (int)d,
                    x.data.data(), (int)d, 0.0f, ip.data(), (int)n);
#pragma omp parallel for schedule(dynamic, 16)
        for (long long qi = 0; qi < (long long)nq; ++qi) {
            const size_t                           q = q0 + (size_t)qi;
            std::vector<std::pair<float, int64_t>> cand;
            cand.reserve(n - 1);
            for (size_t r = 0; r < n; ++r) {
                if (r == q) {
                    continue;
                }
                float dis = norms[q] + norms[r] - 2.0f * ip[(size_t)qi * n + r];
                cand.emplace_back(dis < 0 ? 0.0f : dis, (int64_t)r);
            }
            std::partial_sort(cand.begin(), cand.begin() + (long)k, cand.end());
            for (size_t j = 0; j < k; ++j) {
                out[q * k + j] = cand[j].second;
            }
        }
    }
}

accuracy evaluate(const matrix & x, const std::vector<int> & labels, const eval_params & params) {
    if (labels.size() != x.rows) {
        throw error("evaluate: " + std::to_string(x.rows) + " vectors but " + std::to_string(labels.size()) +
                    " labels");
    }
    accuracy              acc;
    std::map<int, size_t> count;
    for (int l : labels) {
        ++count[l];
    }
    size_t max_r = 1;
    for (const auto & [l, c] : count) {
        max_r = std::max(max_r, c - 1);
    }
    std::vector<int64_t> nn;
    knn(x, max_r, nn);
    const size_t k = x.rows > 1 ? std::min(max_r, x.rows - 1) : 0;

    double sum_ap = 0, sum_p1 = 0;
    for (size_t q = 0; q < x.rows && k > 0; ++q) {
        const size_t r = count[labels[q]] - 1;  // other images with the query's label
        if (r == 0) {
            continue;  // a lone label: left out, as PML does
        }
        size_t correct = 0;
        double ap      = 0;
        for (size_t i = 0; i < r; ++i) {
            if (labels[nn[q * k + i]] == labels[q]) {
                ++correct;
                ap += (double)correct / (double)(i + 1);
            }
        }
        sum_ap += ap / (double)r;
        sum_p1 += labels[nn[q * k]] == labels[q] ? 1.0 : 0.0;
        ++acc.n_queries;
    }
    const double nan                = std::numeric_limits<double>::quiet_NaN();
    acc.mean_average_precision_at_r = acc.n_queries ? sum_ap / (double)acc.n_queries : nan;
    acc.precision_at_1              = acc.n_queries ? sum_p1 / (double)acc.n_queries : nan;
    if (params.clustering) {
        const auto clusters = kmeans(x, (int)count.size(), params.kmeans_iter, params.kmeans_seed);
        acc.NMI             = normalized_mutual_info(labels, clusters);
        acc.AMI             = adjusted_mutual_info(labels, clusters);
        for (int seed : params.spread_seeds) {
            const auto c = kmeans(x, (int)count.size(), params.kmeans_iter, seed);
            acc.NMI_by_seed.push_back(normalized_mutual_info(labels, c));
            acc.AMI_by_seed.push_back(adjusted_mutual_info(labels, c));
        }
    } else {
        acc.NMI = acc.AMI = nan;
    }
    return acc;
}

}  // namespace dior
