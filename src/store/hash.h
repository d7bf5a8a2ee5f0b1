// File hashing for the store (see hash.cpp).
#pragma once

#include <string>

namespace dior {

// SHA-256 of a file's contents, read whole (no cache).
std::string sha256_file_uncached(const std::string & path);

}  // namespace dior
