#include "prompt/utf8.h"

#include "dior.h"

namespace dior {

namespace {

// The length a sequence starting with byte c has (0: none), and the range its second byte must be
// in (Unicode's table of well-formed byte sequences: no overlongs, surrogates or > U+10FFFF); k is
// set to the length of the longest valid prefix at text[i].
int sequence_at(const std::string & text, size_t i, size_t & k) {
    const unsigned char c   = (unsigned char)text[i];
    int                 len = 0;
    unsigned char       lo = 0x80, hi = 0xbf;
    k = 1;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo  = c == 0xe0 ? 0xa0 : 0x80;
        hi  = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo  = c == 0xf0 ? 0x90 : 0x80;
        hi  = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;  // a byte that never starts a sequence
    }
    while ((int)k < len && i + k < text.size()) {
        const unsigned char b = (unsigned char)text[i + k];
        if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) {
            break;
        }
        ++k;
    }
    return len;
}

}  // namespace

size_t utf8_length_at(const std::string & text, size_t i) {
    size_t    k   = 0;
    const int len = sequence_at(text, i, k);
    return len > 0 && (int)k == len ? k : 0;
}

std::string utf8_lossy(const std::string & bytes) {
    static const char * k_replacement = "\xef\xbf\xbd";
    std::string         out;
    out.reserve(bytes.size());
    for (size_t i = 0; i < bytes.size();) {
        size_t    k   = 0;
        const int len = sequence_at(bytes, i, k);
        if (len > 0 && (int)k == len) {
            out.append(bytes, i, k);
        } else {
            out += k_replacement;  // one replacement for the longest valid prefix (at least a byte)
        }
        i += k;
    }
    return out;
}

}  // namespace dior
