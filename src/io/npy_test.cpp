#include "dior.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <limits>

namespace fs = std::filesystem;

TEST(Npy, RoundTripIsBitExact) {
    dior::matrix m;
    m.rows = 3;
    m.cols = 5;
    for (int i = 0; i < 15; ++i) {
        m.data.push_back(std::ldexp(1.0f + i / 7.0f, i - 7) * (i % 2 ? -1.0f : 1.0f));
    }
    m.data[3]       = -0.0f;
    m.data[4]       = std::numeric_limits<float>::infinity();
    m.data[5]       = std::numeric_limits<float>::denorm_min();
    const auto path = (fs::temp_directory_path() / "dior_npy_test.npy").string();
    dior::write_npy(path, m);
    const dior::matrix r = dior::read_npy(path);
    EXPECT_EQ(r.rows, 3u);
    EXPECT_EQ(r.cols, 5u);
    ASSERT_EQ(r.data.size(), m.data.size());
    EXPECT_EQ(std::memcmp(r.data.data(), m.data.data(), m.data.size() * sizeof(float)), 0);

    // Header: magic, version 1.0, and data starting at a multiple of 64 bytes.
    std::ifstream f(path, std::ios::binary);
    char          head[10];
    f.read(head, 10);
    EXPECT_EQ(std::memcmp(head, "\x93NUMPY\x01\x00", 8), 0);
    const size_t header_len = (uint8_t)head[8] | ((size_t)(uint8_t)head[9] << 8);
    EXPECT_EQ((10 + header_len) % 64, 0u);
    EXPECT_EQ(fs::file_size(path), 10 + header_len + 15 * sizeof(float));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    fs::remove(path);
}

TEST(Npy, ShapeMismatchIsRefused) {
    dior::matrix m;
    m.rows = 2;
    m.cols = 2;
    m.data = { 1, 2, 3 };
    EXPECT_THROW(dior::write_npy((fs::temp_directory_path() / "dior_bad.npy").string(), m), dior::error);
}
