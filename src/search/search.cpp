// Exact nearest neighbours of a query among one setting's vectors, on faiss' flat indexes: the
// same squared L2 distances the evaluation ranks by (IndexFlatL2, as pytorch-metric-learning
// uses), or cosine similarity on normalised copies (IndexFlatIP).
#include "dior.h"

#include <algorithm>
#include <cmath>
#include <faiss/IndexFlat.h>

namespace dior {

const char * metric_name(metric m) {
    return m == metric::cosine ? "cosine" : "l2";
}

std::optional<metric> parse_metric(const std::string & name) {
    if (name == "l2") {
        return metric::l2;
    }
    if (name == "cosine") {
        return metric::cosine;
    }
    return std::nullopt;
}

namespace {

// Rows scaled to unit length; a zero row stays zero (cosine similarity 0 with everything).
void normalise_rows(float * x, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; ++r) {
        float * v = x + r * cols;
        double  s = 0;
        for (size_t j = 0; j < cols; ++j) {
            s += (double)v[j] * v[j];
        }
        if (s > 0) {
            const float inv = (float)(1.0 / std::sqrt(s));
            for (size_t j = 0; j < cols; ++j) {
                v[j] *= inv;
            }
        }
    }
}

}  // namespace

struct vector_index::impl {
    metric                        kind;
    size_t                        dim = 0;
    std::unique_ptr<faiss::Index> index;
};

vector_index::vector_index(matrix vectors, metric m) : p_(std::make_unique<impl>()) {
    if (vectors.rows > 0 && vectors.cols == 0) {
        throw error("cannot index vectors of width 0");
    }
    if (vectors.data.size() != vectors.rows * vectors.cols) {
        throw error("matrix data does not match its shape");
    }
    for (float v : vectors.data) {
        if (!std::isfinite(v)) {
            throw error("a vector holds NaN or an infinite value; it cannot be searched");
        }
    }
    p_->kind = m;
    p_->dim  = vectors.cols;
    if (m == metric::cosine) {
        normalise_rows(vectors.data.data(), vectors.rows, vectors.cols);
        p_->index = std::make_unique<faiss::IndexFlatIP>((faiss::Index::idx_t)vectors.cols);
    } else {
        p_->index = std::make_unique<faiss::IndexFlatL2>((faiss::Index::idx_t)vectors.cols);
    }
    if (vectors.rows > 0) {
        p_->index->add((faiss::Index::idx_t)vectors.rows, vectors.data.data());
    }
}

vector_index::~vector_index()                                    = default;
vector_index::vector_index(vector_index &&) noexcept             = default;
vector_index & vector_index::operator=(vector_index &&) noexcept = default;

size_t vector_index::size() const {
    return (size_t)p_->index->ntotal;
}

size_t vector_index::dim() const {
    return p_->dim;
}

metric vector_index::kind() const {
    return p_->kind;
}

std::vector<float> vector_index::vector(size_t row) const {
    if (row >= size()) {
        throw error("row " + std::to_string(row) + " is outside the index (" + std::to_string(size()) + " rows)");
    }
    std::vector<float> v(p_->dim);
    p_->index->reconstruct((faiss::Index::idx_t)row, v.data());
    return v;
}

std::vector<neighbor> vector_index::search(const float * query, size_t dim, size_t k,
                                           std::optional<size_t> exclude) const {
    if (dim != p_->dim) {
        throw error("the query has " + std::to_string(dim) + " values, the stored vectors " + std::to_string(p_->dim) +
                    ": it was not made with this setting's model");
    }
    for (size_t j = 0; j < dim; ++j) {
        if (!std::isfinite(query[j])) {
            throw error("the query vector holds NaN or an infinite value");
        }
    }
    const size_t n = size();
    // One more than asked when the query's own row is to be left out; a few more still, so that
    // rows at the same distance as the last one kept can be put in row order.
    const size_t want = std::min(n, k + (exclude ? 1 : 0) + 8);
    if (k == 0 || want == 0) {
        return {};
    }
    std::vector<float> q(query, query + dim);
    if (p_->kind == metric::cosine) {
        normalise_rows(q.data(), 1, dim);
    }
    std::vector<float>               d(want);
    std::vector<faiss::Index::idx_t> ids(want);
    p_->index->search(1, q.data(), (faiss::Index::idx_t)want, d.data(), ids.data());

    std::vector<neighbor> out;
    for (size_t i = 0; i < want; ++i) {
        if (ids[i] < 0 || (exclude && (size_t)ids[i] == *exclude)) {
            continue;
        }
        neighbor nb;
        nb.row      = (size_t)ids[i];
        nb.distance = p_->kind == metric::cosine ? 1.0f - d[i] : std::sqrt(std::max(0.0f, d[i]));
        out.push_back(nb);
    }
    std::stable_sort(out.begin(), out.end(), [](const neighbor & a, const neighbor & b) {
        return a.distance != b.distance ? a.distance < b.distance : a.row < b.row;
    });
    if (out.size() > k) {
        out.resize(k);
    }
    return out;
}

}  // namespace dior
