// A store's content for comparisons in tests: per setting name, image path -> vector bytes.
#pragma once

#include "dior.h"

#include <gtest/gtest.h>
#include <map>
#include <string>

namespace dior::test {

using store_content = std::map<std::string, std::map<std::string, std::string>>;

inline store_content read_store(const std::string & path) {
    auto          st = dior::store::open(path, true);
    store_content out;
    for (const auto & s : st->settings()) {
        std::vector<std::string> paths;
        const dior::matrix       m   = st->vectors(s.id, &paths);
        auto &                   set = out[dior::reference_dir_name(s.s)];
        for (size_t r = 0; r < m.rows; ++r) {
            set[paths[r]] = std::string((const char *)(m.data.data() + r * m.cols), m.cols * sizeof(float));
        }
        EXPECT_EQ(set.size(), m.rows) << "duplicate rows in " << path;
    }
    return out;
}

}  // namespace dior::test
