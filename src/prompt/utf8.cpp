#include "prompt/utf8.h"

namespace dior {

std::string utf8_lossy(const std::string & bytes) {
    static const char * k_replacement = "\xef\xbf\xbd";
    std::string         out;
    out.reserve(bytes.size());
    const size_t n = bytes.size();
    size_t       i = 0;
    while (i < n) {
        const unsigned char c = (unsigned char)bytes[i];
        if (c < 0x80) {
            out.push_back((char)c);
            ++i;
            continue;
        }
        // The length a sequence starting with c has, and the range its second byte must be in
        // (Unicode's table of well-formed byte sequences: no overlongs, surrogates or > U+10FFFF).
        int           len = 0;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            lo  = c == 0xe0 ? 0xa0 : 0x80;
            hi  = c == 0xed ? 0x9f : 0xbf;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            lo  = c == 0xf0 ? 0x90 : 0x80;
            hi  = c == 0xf4 ? 0x8f : 0xbf;
        }
        if (len == 0) {  // a byte that never starts a sequence
            out += k_replacement;
            ++i;
            continue;
        }
        // The longest valid prefix: one replacement stands for all of it when it stops short.
        size_t k = 1;
        while ((int)k < len && i + k < n) {
            const unsigned char b = (unsigned char)bytes[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) {
                break;
            }
            ++k;
        }
        if ((int)k == len) {
            out.append(bytes, i, k);
        } else {
            out += k_replacement;
        }
        i += k;
    }
    return out;
}

}  // namespace dior
