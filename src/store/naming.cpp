// Directory names of the reference's output layout (SPEC section 5).
#include "dior.h"
#include "store/escape.h"

#include <cstdio>
#include <cstring>
#include <regex>

namespace dior {
namespace {

std::string replace_all(std::string s, char from, char to) {
    for (char & c : s) {
        c = c == from ? to : c;
    }
    return s;
}

// A condition may hold characters a file name cannot ("make/model"): "/" becomes "%2F", and so
// that this can be undone, "%" itself "%25"; control characters and NUL are escaped the same way.
std::string escape_name(const std::string & text) {
    return percent_escape(text, "/", false);
}

int hex_digit(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

// The inverse: "%XX" back to its byte; a "%" not followed by two hex digits (as the reference
// may write one) stays as it is.
std::string unescape_name(const std::string & text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_digit(text[i + 1]) >= 0 && hex_digit(text[i + 2]) >= 0) {
            out.push_back((char)(hex_digit(text[i + 1]) * 16 + hex_digit(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

}  // namespace

std::string percent_escape(const std::string & text, const char * also, bool non_ascii) {
    std::string out;
    for (unsigned char c : text) {
        if (c == '%' || c < 0x20 || c == 0x7f || (non_ascii && c >= 0x80) || (c && std::strchr(also, c))) {
            char buf[4];
            std::snprintf(buf, sizeof(buf), "%%%02X", c);
            out += buf;
        } else {
            out.push_back((char)c);
        }
    }
    return out;
}

std::string reference_dir_name(const setting & s) {
    const std::string model = replace_all(s.model_id, '/', '_');
    if (s.source == "clip") {
        return s.dataset + "-" + model + "-embedsrc=clip";
    }
    if (s.source == "indirect") {
        return s.dataset + "-" + model + "-indirect-" +
               escape_name(indirect_aspect_key(s.dataset, s.condition.value_or(""))) +
               "-num_components=" + std::to_string(s.components);
    }
    // Sampling: the reference appends the temperature with two decimals.
    std::string sample;
    if (s.temperature > 0) {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "-sample-temp=%.2f", s.temperature);
        sample = buf;
    }
    const std::string head = s.dataset + "-" + model + "-" + s.prompt_type + "-" +
                             (s.condition ? escape_name(replace_all(*s.condition, ' ', '_')) : std::string("None"));
    if (s.source == "generative") {
        // dior's answer-only mode is not the reference's: named, so that it never shares a folder
        return head + "-embedsrc=generative-" + replace_all(s.text_encoder, '/', '_') +
               "-max_tokens=" + std::to_string(s.max_new_tokens) + sample +
               (s.text_mode == "answer" ? "-embed_text=answer" : "");
    }
    std::string name = head + "-num_layer=" + std::to_string(s.layer) + "-num_token=" + std::to_string(s.token) +
                       "-embedsrc=" + s.source;
    if (s.source == "first_output" || s.source == "mean_output") {
        name += "-gen_max_new_tokens=" + std::to_string(s.max_new_tokens) + sample;
    }
    return name;
}

namespace {

std::optional<setting> parse_name(const std::string & name) {
    static const std::regex clip_re(R"(^([^-]+)-(.+)-embedsrc=clip$)");
    static const std::regex indirect_re(R"(^([^-]+)-(.+)-indirect-(.+)-num_components=(\d+)$)");
    std::smatch             cm;
    const bool              indirect = std::regex_match(name, cm, indirect_re);
    if (indirect || std::regex_match(name, cm, clip_re)) {  // the baselines: no prompt, no positions
        setting s;
        s.dataset     = cm[1].str();
        s.model_id    = cm[2].str();
        s.prompt_type = "";
        s.positions   = "";
        s.source      = indirect ? "indirect" : "clip";
        if (indirect) {
            s.condition  = indirect_aspect_name(s.dataset, unescape_name(cm[3].str()));
            s.components = std::stoi(cm[4].str());
        }
        return s;
    }
    static const std::string prompts = "(describe|express|summarize|capture|convey|depict|describe_unconstraint)";
    static const std::regex  re("^([^-]+)-(.+)-" + prompts +
                                R"(-(.+)-num_layer=(-?\d+)-num_token=(-?\d+)-embedsrc=([A-Za-z_]+))"
                                 R"((?:-gen_max_new_tokens=(\d+))?(?:-sample-temp=(\d+\.\d+))?$)");
    static const std::regex  generative_re("^([^-]+)-(.+)-" + prompts +
                                           R"(-(.+)-embedsrc=generative-(.+)-max_tokens=(\d+))"
                                            R"((?:-sample-temp=(\d+\.\d+))?(-embed_text=answer)?$)");
    std::smatch              m;
    setting                  s;
    if (std::regex_match(name, m, generative_re)) {
        s.source         = "generative";
        s.text_encoder   = m[5].str();
        s.max_new_tokens = std::stoi(m[6].str());
        s.temperature    = m[7].matched ? std::stod(m[7].str()) : 0.0;
        s.text_mode      = m[8].matched ? "answer" : "whole";
        s.layer          = -1;
        s.token          = -1;
    } else if (std::regex_match(name, m, re)) {
        s.layer  = std::stoi(m[5].str());
        s.token  = std::stoi(m[6].str());
        s.source = m[7].str();
        if (m[8].matched != (s.source == "first_output" || s.source == "mean_output")) {
            return std::nullopt;  // generated sources, and only they, name their token count
        }
        s.max_new_tokens = m[8].matched ? std::stoi(m[8].str()) : 0;
        s.temperature    = m[9].matched ? std::stod(m[9].str()) : 0.0;
        if (m[9].matched && !m[8].matched) {
            return std::nullopt;
        }
    } else {
        return std::nullopt;
    }
    if ((s.source == "generative" || s.source == "first_output" || s.source == "mean_output") && s.max_new_tokens < 1) {
        return std::nullopt;
    }
    s.dataset                = m[1].str();
    s.model_id               = m[2].str();
    s.prompt_type            = m[3].str();
    const std::string aspect = m[4].str();
    if (aspect != "None") {
        s.condition = unescape_name(replace_all(aspect, '_', ' '));
        // An aspect the registry knows keeps its own spelling (e.g. "movie's production country").
        if (const dataset_info * d = find_dataset(s.dataset)) {
            for (const auto & a : d->aspects) {
                if (a && replace_all(*a, ' ', '_') == aspect) {
                    s.condition = *a;
                }
            }
        }
    }
    return s;
}

}  // namespace

std::optional<setting> parse_reference_dir_name(const std::string & name) {
    try {
        return parse_name(name);
    } catch (const std::logic_error &) {  // a number too large for its type: not one of our names
        return std::nullopt;
    }
}

}  // namespace dior
