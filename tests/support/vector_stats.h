// Comparing dior's vectors with an oracle's: cosine and relative L2 distance, and the worst of
// both over a group of cases (parity_test.cpp, families_test.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace dior::test {

struct stats {
    double worst_cos = 1, worst_rel = 0;
    int    n = 0;

    void add(double cos, double rel) {
        worst_cos = std::min(worst_cos, cos);
        worst_rel = std::max(worst_rel, rel);
        ++n;
    }
};

// cos(ours, ref) and |ours - ref| / |ref|, in double.
inline void compare(const std::vector<float> & ours, const float * ref, size_t n, double & cos, double & rel) {
    double dot = 0, na = 0, nb = 0, diff = 0;
    for (size_t i = 0; i < n; ++i) {
        dot += (double)ours[i] * ref[i];
        na += (double)ours[i] * ours[i];
        nb += (double)ref[i] * ref[i];
        diff += ((double)ours[i] - ref[i]) * ((double)ours[i] - ref[i]);
    }
    cos = dot / std::sqrt(na * nb);
    rel = std::sqrt(diff / nb);
}

}  // namespace dior::test
