// File hashing for the store (see hash.cpp).
#pragma once

#include <atomic>
#include <string>

namespace dior {

// SHA-256 of a file's contents, read whole (no cache); dior::error if `cancel` becomes true.
std::string sha256_file_uncached(const std::string & path, const std::atomic<bool> * cancel = nullptr);

}  // namespace dior
