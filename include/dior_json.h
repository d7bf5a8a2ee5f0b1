// dior.cpp: JSON for values whose strings are bytes. Every JSON the library and its tools write or
// read goes through here.
//
// File names on Linux are bytes and need not be UTF-8 (a Latin-1 "café.png" is "caf\xe9.png").
// nlohmann::json holds such strings but refuses to write them. Here valid UTF-8 is written as it
// is and each byte that is not part of a well-formed sequence as "\udcXX", Python's
// surrogateescape: json.loads() then os.fsencode() give the exact bytes back, and
// JSON.stringify() in a browser sends the same escapes back. json_parse() reads them as bytes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace dior {

// j as JSON text (indent < 0: compact; else nlohmann's layout with that indent).
std::string json_text(const nlohmann::json & j, int indent = -1);

// JSON text into a value whose strings (keys too) are bytes: "\udc80".."\udcff" not paired with a
// high surrogate stands for byte 0x80..0xff. Otherwise as nlohmann::json::parse (which throws
// nlohmann::json::parse_error on malformed text).
nlohmann::json json_parse(const std::string & text);

}  // namespace dior
