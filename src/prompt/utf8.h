// UTF-8 repair for decoded model output.
#pragma once

#include <string>

namespace dior {

// `bytes` as valid UTF-8: every maximal ill-formed subsequence replaced by U+FFFD, as Python's
// bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy (Hugging Face's decoders) do.
std::string utf8_lossy(const std::string & bytes);

}  // namespace dior
