// k-means (faiss, as pytorch-metric-learning's FaissKMeans) and NMI / AMI exactly as scikit-learn
// computes them (normalized_mutual_info_score, adjusted_mutual_info_score; arithmetic mean).
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <limits>
#include <map>

namespace dior {
namespace {

struct contingency {
    std::vector<int64_t>                         a, b;  // row and column sums
    std::map<std::pair<size_t, size_t>, int64_t> cells;
    int64_t                                      n = 0;
};

contingency make_contingency(const std::vector<int> & x, const std::vector<int> & y) {
    if (x.size() != y.size()) {
        throw error("mutual information: label lists differ in length");
    }
    std::map<int, size_t> ix, iy;
    for (int v : x) {
        ix.emplace(v, ix.size());
    }
    for (int v : y) {
        iy.emplace(v, iy.size());
    }
    // Class order as np.unique: sorted values.
    size_t i = 0;
    for (auto & [v, idx] : ix) {
        idx = i++;
    }
    i = 0;
    for (auto & [v, idx] : iy) {
        idx = i++;
    }
    contingency c;
    c.a.assign(ix.size(), 0);
    c.b.assign(iy.size(), 0);
    for (size_t k = 0; k < x.size(); ++k) {
        const size_t r = ix[x[k]], s = iy[y[k]];
        ++c.cells[{ r, s }];
        ++c.a[r];
        ++c.b[s];
    }
    c.n = (int64_t)x.size();
    return c;
}

double entropy(const std::vector<int64_t> & counts, int64_t n) {
    if (n == 0) {
        return 1.0;
    }
    double h = 0;
    for (int64_t c : counts) {
        if (c > 0) {
            h -= ((double)c / (double)n) * (std::log((double)c) - std::log((double)n));
        }
    }
    return h;
}

double mutual_info(const contingency & c) {
    if (c.a.size() == 1 || c.b.size() == 1) {
        return 0.0;
    }
    const double n   = (double)c.n;
    double       sum = 0;
    for (const auto & [rc, v] : c.cells) {
        const double nm    = (double)v / n;
        const double outer = (double)(c.a[rc.first] * c.b[rc.second]);
        double mi = nm * (std::log((double)v) - std::log(n)) + nm * (-std::log(outer) + std::log(n) + std::log(n));
        if (std::fabs(mi) < std::numeric_limits<double>::epsilon()) {
            mi = 0.0;
        }
        sum += mi;
    }
    return std::max(sum, 0.0);
}

// scikit-learn's expected_mutual_information (sklearn/metrics/cluster/_expected_mutual_info_fast.pyx).
double expected_mutual_info(const contingency & c) {
    const size_t R = c.a.size(), C = c.b.size();
    if (R == 1 || C == 1) {
        return 0.0;
    }
    const double  N    = (double)c.n;
    const int64_t maxn = std::max(*std::max_element(c.a.begin(), c.a.end()), *std::max_element(c.b.begin(), c.b.end()));
    std::vector<double> nijs(maxn + 1), term1(maxn + 1), log_Nnij(maxn + 1), gln_Nnij(maxn + 1);
    for (int64_t v = 0; v <= maxn; ++v) {
        nijs[v]     = v == 0 ? 1.0 : (double)v;
        term1[v]    = nijs[v] / N;
        log_Nnij[v] = std::log(N) + std::log(nijs[v]);
        gln_Nnij[v] = std::lgamma(nijs[v] + 1) + std::lgamma(N + 1);
    }
    double emi = 0;
    for (size_t i = 0; i < R; ++i) {
        const double ai = (double)c.a[i];
        for (size_t j = 0; j < C; ++j) {
            const double  bj    = (double)c.b[j];
            const int64_t start = std::max<int64_t>(1, c.a[i] - c.n + c.b[j]);
            const int64_t end   = std::min(c.a[i], c.b[j]) + 1;
            for (int64_t nij = start; nij < end; ++nij) {
                const double term2 = log_Nnij[nij] - std::log(ai) - std::log(bj);
                const double gln   = std::lgamma(ai + 1) + std::lgamma(bj + 1) + std::lgamma(N - ai + 1) +
                                   std::lgamma(N - bj + 1) - gln_Nnij[nij] - std::lgamma(ai - (double)nij + 1) -
                                   std::lgamma(bj - (double)nij + 1) - std::lgamma(N - ai - bj + (double)nij + 1);
                emi += term1[nij] * term2 * std::exp(gln);
            }
        }
    }
    return emi;
}

bool trivial(const contingency & c) {
    return (c.a.size() == c.b.size()) && (c.a.size() <= 1);
}

}  // namespace

double normalized_mutual_info(const std::vector<int> & x, const std::vector<int> & y) {
    const contingency c = make_contingency(x, y);
    if (trivial(c)) {
        return 1.0;
    }
    const double mi = mutual_info(c);
    if (mi == 0) {
        return 0.0;
    }
    const double norm = std::max((entropy(c.a, c.n) + entropy(c.b, c.n)) / 2, std::numeric_limits<double>::epsilon());
    return mi / norm;
}

double adjusted_mutual_info(const std::vector<int> & x, const std::vector<int> & y) {
    const contingency c = make_contingency(x, y);
    if (trivial(c)) {
        return 1.0;
    }
    const double mi    = mutual_info(c);
    const double emi   = expected_mutual_info(c);
    const double norm  = (entropy(c.a, c.n) + entropy(c.b, c.n)) / 2;
    double       denom = norm - emi;
    const double eps   = std::numeric_limits<double>::epsilon();
    denom              = denom < 0 ? std::min(denom, -eps) : std::max(denom, eps);
    return (mi - emi) / denom;
}

std::vector<int> kmeans(const matrix & x, int k, int niter, int seed) {
    std::vector<int> out(x.rows, 0);
    if (x.rows == 0 || k <= 1) {
        return out;
    }
    faiss::ClusteringParameters cp;
    cp.niter                   = niter;
    cp.seed                    = seed;
    cp.verbose                 = false;
    cp.min_points_per_centroid = 1;  // only silences faiss' "please provide at least ..." warning
    faiss::Clustering  clus((int)x.cols, k, cp);
    faiss::IndexFlatL2 index((faiss::Index::idx_t)x.cols);
    clus.train((faiss::Index::idx_t)x.rows, x.data.data(), index);
    std::vector<float>               dist(x.rows);
    std::vector<faiss::Index::idx_t> idx(x.rows);
    index.search((faiss::Index::idx_t)x.rows, x.data.data(), 1, dist.data(), idx.data());
    for (size_t i = 0; i < x.rows; ++i) {
        out[i] = (int)idx[i];
    }
    return out;
}

}  // namespace dior
