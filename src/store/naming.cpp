// Directory names of the reference's output layout (SPEC section 5).
#include "dior.h"

#include <regex>

namespace dior {
namespace {

std::string replace_all(std::string s, char from, char to) {
    for (char & c : s) {
        c = c == from ? to : c;
    }
    return s;
}

}  // namespace

std::string reference_dir_name(const setting & s) {
    return s.dataset + "-" + replace_all(s.model_id, '/', '_') + "-" + s.prompt_type + "-" +
           (s.condition ? replace_all(*s.condition, ' ', '_') : std::string("None")) +
           "-num_layer=" + std::to_string(s.layer) + "-num_token=" + std::to_string(s.token) + "-embedsrc=" + s.source;
}

std::optional<setting> parse_reference_dir_name(const std::string & name) {
    static const std::regex re(
        R"(^([^-]+)-(.+)-(describe|express|summarize|capture|convey|depict|describe_unconstraint)-(.+)-num_layer=(-?\d+)-num_token=(-?\d+)-embedsrc=([A-Za-z_]+)$)");
    std::smatch m;
    if (!std::regex_match(name, m, re)) {
        return std::nullopt;
    }
    setting s;
    s.dataset                = m[1].str();
    s.model_id               = m[2].str();
    s.prompt_type            = m[3].str();
    const std::string aspect = m[4].str();
    if (aspect != "None") {
        s.condition = replace_all(aspect, '_', ' ');
        // An aspect the registry knows keeps its own spelling (e.g. "movie's production country").
        if (const dataset_info * d = find_dataset(s.dataset)) {
            for (const auto & a : d->aspects) {
                if (a && replace_all(*a, ' ', '_') == aspect) {
                    s.condition = *a;
                }
            }
        }
    }
    s.layer  = std::stoi(m[5].str());
    s.token  = std::stoi(m[6].str());
    s.source = m[7].str();
    return s;
}

}  // namespace dior
