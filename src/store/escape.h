// Percent-escaping shared by the store's file names and SQLite URIs.
#pragma once

#include <string>

namespace dior {

// `text` with '%', control characters (and DEL) and every byte of `also` written as %XX, and,
// when `non_ascii`, bytes from 0x80 on too. unescape: see naming.cpp.
std::string percent_escape(const std::string & text, const char * also, bool non_ascii);

}  // namespace dior
