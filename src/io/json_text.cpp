#include "dior.h"
#include "dior_json.h"

#include <cstdio>

namespace dior {
namespace {

using json = nlohmann::json;

void quote(const std::string & s, std::string & out) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = (unsigned char)s[i];
        char                buf[8];
        if (c >= 0x80) {
            const size_t n = utf8_length_at(s, i);
            if (n > 0) {
                out.append(s, i, n);
                i += n - 1;
            } else {
                std::snprintf(buf, sizeof(buf), "\\udc%02x", c);
                out += buf;
            }
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += (char)c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\b') {
            out += "\\b";
        } else if (c == '\f') {
            out += "\\f";
        } else if (c < 0x20) {
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            out += buf;
        } else {
            out += (char)c;
        }
    }
    out += '"';
}

void write(const json & j, int indent, int depth, std::string & out) {
    const bool  pretty = indent >= 0;
    std::string inner, outer;  // what goes before a member, and before the closing bracket
    if (pretty) {
        inner.assign(1, '\n').append((size_t)(indent * (depth + 1)), ' ');
        outer.assign(1, '\n').append((size_t)(indent * depth), ' ');
    }
    if (j.is_string()) {
        quote(j.get_ref<const std::string &>(), out);
    } else if (j.is_object()) {
        if (j.empty()) {
            out += "{}";
            return;
        }
        out += '{';
        bool first = true;
        for (const auto & [key, value] : j.items()) {
            if (!first) {
                out += ',';
            }
            out += inner;
            first = false;
            quote(key, out);
            out += pretty ? ": " : ":";
            write(value, indent, depth + 1, out);
        }
        out += outer;
        out += '}';
    } else if (j.is_array()) {
        if (j.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t i = 0; i < j.size(); ++i) {
            if (i > 0) {
                out += ',';
            }
            out += inner;
            write(j[i], indent, depth + 1, out);
        }
        out += outer;
        out += ']';
    } else {
        out += j.dump();  // null, booleans, numbers (binary values are not written by the tool)
    }
}

// Markers for json_parse: a byte b escaped as \udcXX becomes U+10FFFF and two hex digits in the
// text nlohmann reads; U+10FFFF itself (a noncharacter, but valid) is doubled. unmark() undoes it.
const std::string k_mark = "\xf4\x8f\xbf\xbf";

int hex_value(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

// The code unit of a \uXXXX escape at text[i] (i at the backslash), or -1.
int escape_at(const std::string & text, size_t i) {
    if (i + 6 > text.size() || text[i] != '\\' || text[i + 1] != 'u') {
        return -1;
    }
    int v = 0;
    for (size_t k = 2; k < 6; ++k) {
        const int h = hex_value(text[i + k]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

std::string mark(const std::string & text) {
    std::string out;
    out.reserve(text.size());
    bool in_string = false;
    int  previous  = -1;  // the code unit of the escape just before, if the last thing was one
    for (size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (!in_string) {
            in_string = c == '"';
            out += c;
            ++i;
            continue;
        }
        if (c == '"') {
            in_string = false;
            previous  = -1;
            out += c;
            ++i;
        } else if (c == '\\' && i + 1 < text.size() && text[i + 1] != 'u') {
            out.append(text, i, 2);
            i += 2;
            previous = -1;
        } else if (c == '\\') {
            const int  v          = escape_at(text, i);
            const bool after_high = previous >= 0xd800 && previous <= 0xdbff;
            if (v >= 0xdc80 && v <= 0xdcff && !after_high) {
                char buf[4];
                std::snprintf(buf, sizeof(buf), "%02x", v & 0xff);
                out += k_mark + buf;
                previous = -1;
            } else if (v == 0xdfff && previous == 0xdbff) {  // \udbff\udfff: U+10FFFF, doubled
                out.append(text, i, 6);
                out += "\\udbff\\udfff";
                previous = -1;
            } else {
                out.append(text, i, v < 0 ? 2 : 6);  // a malformed escape is nlohmann's to report
                previous = v;
            }
            i += v < 0 ? 2 : 6;
        } else if (text.compare(i, k_mark.size(), k_mark) == 0) {
            out += k_mark + k_mark;
            i += k_mark.size();
            previous = -1;
        } else {
            out += c;
            ++i;
            previous = -1;
        }
    }
    return out;
}

std::string unmark(const std::string & s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
        if (s.compare(i, k_mark.size(), k_mark) != 0) {
            out += s[i++];
            continue;
        }
        i += k_mark.size();
        if (s.compare(i, k_mark.size(), k_mark) == 0) {
            out += k_mark;
            i += k_mark.size();
        } else {  // mark() wrote two hex digits
            out += (char)(hex_value(s[i]) * 16 + hex_value(s[i + 1]));
            i += 2;
        }
    }
    return out;
}

json unmark_all(const json & j) {
    if (j.is_string()) {
        return unmark(j.get_ref<const std::string &>());
    }
    if (j.is_object()) {
        json out = json::object();
        for (const auto & [key, value] : j.items()) {
            out[unmark(key)] = unmark_all(value);
        }
        return out;
    }
    if (j.is_array()) {
        json out = json::array();
        for (const auto & v : j) {
            out.push_back(unmark_all(v));
        }
        return out;
    }
    return j;
}

}  // namespace

std::string json_text(const nlohmann::json & j, int indent) {
    std::string out;
    write(j, indent, 0, out);
    return out;
}

nlohmann::json json_parse(const std::string & text) {
    const std::string marked = mark(text);
    const json        j      = json::parse(marked);
    return marked.find(k_mark) == std::string::npos ? j : unmark_all(j);
}

}  // namespace dior
