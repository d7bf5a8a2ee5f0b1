// CLIP's tokenizer as Hugging Face's CLIPTokenizerFast runs it (what the reference's CLIPProcessor
// uses): NFC, whitespace runs -> " " and lower-casing, the special tokens <|startoftext|> /
// <|endoftext|> matched in that text, then per segment the split
//   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (matches kept, the rest dropped), GPT-2's byte-to-unicode mapping, BPE with "</w>" closing each
// word, and <|startoftext|> ... <|endoftext|> around, truncated to the context (77).
// Unicode classes, NFC and lower-casing come from llama.cpp's tables (src/unicode.h, exported by
// libllama; NFC and the full lower-case mapping from dior's patch 0009).
#include "dior.h"
#include "unicode.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace dior {
namespace {

const char * const k_bos_text = "<|startoftext|>";
const char * const k_eos_text = "<|endoftext|>";

struct pair_hash {
    size_t operator()(const std::pair<std::string, std::string> & p) const {
        return std::hash<std::string>()(p.first) * 1000003u ^ std::hash<std::string>()(p.second);
    }
};

}  // namespace

struct clip_tokenizer::impl {
    std::unordered_map<std::string, int32_t>                                ids;
    std::unordered_map<std::pair<std::string, std::string>, int, pair_hash> ranks;
    int32_t                                                                 bos = -1, eos = -1;
    std::unordered_map<std::string, std::vector<int32_t>>                   cache;

    // BPE of one pre-tokenized word (already byte-encoded), "</w>" on its last symbol.
    const std::vector<int32_t> & bpe(const std::string & word) {
        auto hit = cache.find(word);
        if (hit != cache.end()) {
            return hit->second;
        }
        std::vector<std::string> parts;
        for (size_t i = 0; i < word.size();) {
            const size_t n = unicode_len_utf8(word[i]);
            parts.push_back(word.substr(i, n));
            i += n;
        }
        if (!parts.empty()) {
            parts.back() += "</w>";
        }
        while (parts.size() > 1) {
            int    best = std::numeric_limits<int>::max();
            size_t at   = 0;
            for (size_t i = 0; i + 1 < parts.size(); ++i) {
                const auto r = ranks.find({ parts[i], parts[i + 1] });
                if (r != ranks.end() && r->second < best) {
                    best = r->second;
                    at   = i;
                }
            }
            if (best == std::numeric_limits<int>::max()) {
                break;
            }
            // Merge every occurrence of the best pair, left to right (as the reference BPE does).
            const std::string        a = parts[at], b = parts[at + 1];
            std::vector<std::string> merged;
            for (size_t i = 0; i < parts.size();) {
                if (i + 1 < parts.size() && parts[i] == a && parts[i + 1] == b) {
                    merged.push_back(a + b);
                    i += 2;
                } else {
                    merged.push_back(parts[i]);
                    ++i;
                }
            }
            parts = std::move(merged);
        }
        std::vector<int32_t> out;
        for (const auto & p : parts) {
            const auto it = ids.find(p);
            out.push_back(it != ids.end() ? it->second : eos);  // unknown pieces: the unk token, <|endoftext|>
        }
        return cache.emplace(word, std::move(out)).first->second;
    }

    // Hugging Face's normalizer: NFC, whitespace runs -> " ", lower case character by character
    // (full mappings: U+0130 -> "i" U+0307). It runs before the special tokens are looked for
    // (they are "normalized" added tokens: <|ENDOFTEXT|> is one too).
    static std::string normalize(const std::string & text) {
        std::string           out;
        bool                  in_space = false;
        std::vector<uint32_t> lower;
        for (uint32_t c : unicode_cpts_nfc(unicode_cpts_from_utf8(text))) {
            if (unicode_cpt_flags_from_cpt(c).is_whitespace) {
                if (!in_space) {
                    out.push_back(' ');
                }
                in_space = true;
                continue;
            }
            lower.clear();
            unicode_cpt_tolower_full(c, lower);
            for (uint32_t l : lower) {
                out += unicode_cpt_to_utf8(l);
            }
            in_space = false;
        }
        return out;
    }

    // Appends the ids of one normalized segment (no special tokens in it), stopping once `out`
    // holds `limit` ids (what follows would be truncated away).
    void encode_segment(const std::string & text, std::vector<int32_t> & out, size_t limit) {
        const std::vector<uint32_t> cpts = unicode_cpts_from_utf8(text);
        // the split, leftmost-first as a regex engine scans it
        static const char * const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
        size_t                    i              = 0;
        while (i < cpts.size() && out.size() < limit) {
            size_t end = i;
            for (const char * c : contractions) {
                const size_t n = std::char_traits<char>::length(c);
                if (i + n <= cpts.size() && std::equal(c, c + n, cpts.begin() + (long)i)) {
                    end = i + n;
                    break;
                }
            }
            if (end == i) {
                const auto f = unicode_cpt_flags_from_cpt(cpts[i]);
                if (f.is_letter) {
                    while (end < cpts.size() && unicode_cpt_flags_from_cpt(cpts[end]).is_letter) {
                        ++end;
                    }
                } else if (f.is_number) {
                    end = i + 1;
                } else if (!f.is_whitespace) {
                    while (end < cpts.size()) {
                        const auto g = unicode_cpt_flags_from_cpt(cpts[end]);
                        if (g.is_whitespace || g.is_letter || g.is_number) {
                            break;
                        }
                        ++end;
                    }
                }
            }
            if (end == i) {  // whitespace: not part of any match, dropped
                ++i;
                continue;
            }
            std::string word;
            for (size_t k = i; k < end; ++k) {
                for (unsigned char b : unicode_cpt_to_utf8(cpts[k])) {
                    word += unicode_byte_to_utf8(b);
                }
            }
            const auto & ids_of_word = bpe(word);
            out.insert(out.end(), ids_of_word.begin(), ids_of_word.end());
            i = end;
        }
    }
};

clip_tokenizer::clip_tokenizer(const std::vector<std::string> & tokens, const std::vector<std::string> & merges)
    : p_(std::make_unique<impl>()) {
    for (size_t i = 0; i < tokens.size(); ++i) {
        p_->ids.emplace(tokens[i], (int32_t)i);
    }
    for (size_t r = 0; r < merges.size(); ++r) {
        const size_t sp = merges[r].find(' ');
        if (sp == std::string::npos) {
            throw error("CLIP tokenizer: merge " + std::to_string(r) + " is not two symbols: '" + merges[r] + "'");
        }
        p_->ranks.emplace(std::make_pair(merges[r].substr(0, sp), merges[r].substr(sp + 1)), (int)r);
    }
    const auto b = p_->ids.find(k_bos_text), e = p_->ids.find(k_eos_text);
    if (b == p_->ids.end() || e == p_->ids.end()) {
        throw error("CLIP tokenizer: the vocabulary lacks <|startoftext|> or <|endoftext|>");
    }
    p_->bos = b->second;
    p_->eos = e->second;
}

clip_tokenizer::~clip_tokenizer() = default;

int32_t clip_tokenizer::bos() const {
    return p_->bos;
}

int32_t clip_tokenizer::eos() const {
    return p_->eos;
}

std::vector<int32_t> clip_tokenizer::encode(const std::string & text, size_t max_length) const {
    std::vector<int32_t> out  = { p_->bos };
    const std::string    norm = impl::normalize(text);
    size_t               at   = 0;
    while (at <= norm.size()) {
        const size_t s = norm.find(k_bos_text, at), e = norm.find(k_eos_text, at);
        const size_t next  = std::min(s, e);
        const size_t limit = max_length >= 2 ? max_length : std::numeric_limits<size_t>::max();
        p_->encode_segment(norm.substr(at, next == std::string::npos ? std::string::npos : next - at), out, limit);
        if (next == std::string::npos || out.size() >= limit) {
            break;
        }
        out.push_back(next == s ? p_->bos : p_->eos);
        at = next + std::char_traits<char>::length(next == s ? k_bos_text : k_eos_text);
    }
    if (max_length >= 2 && out.size() + 1 > max_length) {
        out.resize(max_length - 1);  // truncated content, then the closing token
    }
    out.push_back(p_->eos);
    return out;
}

}  // namespace dior
