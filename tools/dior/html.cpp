#include "html.h"

#include "dior_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <set>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {

std::string html_escape(const std::string & text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        const char   c = text[i];
        const size_t n = (unsigned char)c >= 0x80 ? utf8_length_at(text, i) : 1;
        if (n == 0) {  // a byte of a name that is not UTF-8, shown as \xNN (the page stays UTF-8)
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", (unsigned char)c);
            out += buf;
            continue;
        }
        if (n > 1) {
            out.append(text, i, n);
            i += n - 1;
            continue;
        }
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string base64(const std::vector<uint8_t> & bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int   n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()), bytes.data(), (int)bytes.size());
    out.resize((size_t)n);
    return out;
}

namespace {

std::string placeholder_svg(const std::string & why, int side) {
    return "<svg xmlns='http://www.w3.org/2000/svg' width='" + std::to_string(side) + "' height='" +
           std::to_string(side) + "'><rect width='100%' height='100%' fill='#ddd'/>" +
           "<text x='50%' y='50%' font-family='sans-serif' font-size='13' fill='#555' " +
           "text-anchor='middle' dominant-baseline='middle'>" + html_escape(why) + "</text></svg>";
}

}  // namespace

thumbnail_image make_thumbnail(const std::string & path, int max_side, const image_limits & limits) {
    thumbnail_image t;
    std::error_code ec;
    std::string     why;
    if (!fs::is_regular_file(path, ec)) {
        why = "missing";
    } else {
        try {
            t.bytes = thumbnail_jpeg(path, max_side, limits);
            t.mime  = "image/jpeg";
            return t;
        } catch (const error &) {
            why = "unreadable";
        }
    }
    const std::string svg = placeholder_svg(why, max_side);
    t.bytes.assign(svg.begin(), svg.end());
    t.mime        = "image/svg+xml";
    t.placeholder = true;
    return t;
}

std::string thumbnail_img(const std::string & path, int max_side, const std::string & title) {
    const thumbnail_image t = make_thumbnail(path, max_side);
    return std::string("<img class=\"thumb") + (t.placeholder ? " missing" : "") + "\" src=\"data:" + t.mime +
           ";base64," + base64(t.bytes) + "\" title=\"" + html_escape(title) + "\" alt=\"" +
           html_escape(fs::path(path).filename().string()) + "\">";
}

std::vector<eval_result> load_eval_dir(const std::string & dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw error("evaluation folder not found: " + printable(dir) + " (dior eval -o DIR writes one)");
    }
    std::vector<fs::path> files;
    for (const auto & e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".json") {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    std::vector<eval_result> out;
    for (const auto & f : files) {
        try {
            std::ifstream     in(f);
            const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            const json        j = json_parse(text);
            eval_result       r;
            r.setting     = j.at("setting").get<std::string>();
            r.dataset     = j.at("dataset").get<std::string>();
            r.model_id    = j.value("model_id", std::string());
            r.prompt_type = j.value("prompt_type", std::string());
            r.source      = j.value("embedsrc", std::string("input_last"));
            r.row_order   = j.value("row_order", std::string("sorted"));  // dior eval sorted before it said
            if (j.contains("aspect") && j["aspect"].is_string()) {
                r.condition = j["aspect"].get<std::string>();
            }
            r.layer = j.value("num_layer", -1);
            r.token = j.value("num_token", -1);
            for (const auto & [aspect, v] : j.at("results").items()) {
                eval_result::scores sc;
                sc.map_r          = v.at("map_r").is_number() ? v["map_r"].get<double>() : NAN;
                sc.prec_1         = v.at("prec_1").is_number() ? v["prec_1"].get<double>() : NAN;
                sc.images         = v.value("images", (size_t)0);
                const auto number = [&](const json & o, const char * key) {
                    return o.contains(key) && o[key].is_number() ? o[key].get<double>() : NAN;
                };
                sc.nmi = number(v, "NMI");
                sc.ami = number(v, "AMI");
                if (v.contains("NMI_over_seeds") && v["NMI_over_seeds"].is_object()) {
                    const json & sp = v["NMI_over_seeds"];
                    sc.nmi_mean     = number(sp, "mean");
                    sc.nmi_min      = number(sp, "min");
                    sc.nmi_max      = number(sp, "max");
                    sc.nmi_seeds    = sp.contains("seeds") && sp["seeds"].is_array() ? sp["seeds"].size() : 0;
                }
                r.by_aspect[aspect] = sc;
            }
            out.push_back(std::move(r));
        } catch (const std::exception & e) {
            std::fprintf(stderr, "warning: %s is not an evaluation written by dior eval (%s); left out\n",
                         printable(f.string()).c_str(), e.what());
        }
    }
    return out;
}

namespace {

std::string method_label(const eval_result & r) {
    const std::string m     = r.source == "input_last"   ? "DIOR"
                              : r.source == "clip"       ? "CLIP"
                              : r.source == "indirect"   ? "InDiReCT"
                              : r.source == "generative" ? "Generative"
                                                         : "DIOR (" + r.source + ")";
    std::string       label = m + " · " + r.model_id;
    const bool        lvlm  = r.source != "clip" && r.source != "indirect";
    if (lvlm && !r.prompt_type.empty()) {
        label += " · " + r.prompt_type;
    }
    if (lvlm && r.source != "generative") {
        label += " · layer " + std::to_string(r.layer);
        if (r.token != -1) {
            label += " · token " + std::to_string(r.token);
        }
    }
    if (lvlm && !r.condition) {
        label += " · no condition";
    }
    return label;
}

// Datasets and aspects in the registry's order, others after them by name.
size_t order_of(const std::string & dataset, const std::string & aspect) {
    const auto & all = datasets();
    for (size_t d = 0; d < all.size(); ++d) {
        if (all[d].name == dataset) {
            for (size_t a = 0; a < all[d].aspects.size(); ++a) {
                if (all[d].aspects[a] && *all[d].aspects[a] == aspect) {
                    return d * 100 + a;
                }
            }
            return d * 100 + 99;
        }
    }
    return 100000;
}

}  // namespace

std::string format_score(double v) {
    if (std::isnan(v)) {
        return "–";
    }
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}

results_table make_results_table(const std::vector<eval_result> & results) {
    results_table                                                    t;
    std::set<std::pair<size_t, std::pair<std::string, std::string>>> cols;
    for (const auto & r : results) {
        for (const auto & [aspect, sc] : r.by_aspect) {
            if (!r.condition || *r.condition == aspect) {
                cols.insert({ order_of(r.dataset, aspect), { r.dataset, aspect } });
            }
        }
    }
    for (const auto & c : cols) {
        t.columns.push_back({ c.second.first, c.second.second });
    }
    for (const auto & r : results) {
        t.all_reference_order &= r.row_order == "reference";
        const std::string label = method_label(r);
        auto              it    = std::find(t.rows.begin(), t.rows.end(), label);
        const size_t      row   = (size_t)(it - t.rows.begin());
        if (it == t.rows.end()) {
            t.rows.push_back(label);
        }
        for (size_t c = 0; c < t.columns.size(); ++c) {
            if (t.columns[c].dataset != r.dataset) {
                continue;
            }
            const auto sc = r.by_aspect.find(t.columns[c].aspect);
            if (sc != r.by_aspect.end() && (!r.condition || *r.condition == t.columns[c].aspect)) {
                t.cells[{ row, c }] = sc->second;
            }
        }
    }
    return t;
}

namespace {

// The table's body: a row per method, a cell per column, `cell` drawing the cells that have scores.
template <typename CellFn>
std::string table_rows(const results_table & t, CellFn cell) {
    std::string h;
    for (size_t r = 0; r < t.rows.size(); ++r) {
        h += "<tr><th class=\"method\">" + html_escape(t.rows[r]) + "</th>";
        for (size_t c = 0; c < t.columns.size(); ++c) {
            const auto it = t.cells.find({ r, c });
            h += it == t.cells.end() ? std::string("<td class=\"none\">·</td>") : cell(it->second);
        }
        h += "</tr>\n";
    }
    return h;
}

}  // namespace

std::string results_table_html(const results_table & t) {
    if (t.columns.empty()) {
        return "<p class=\"empty\">No evaluation results.</p>\n";
    }
    std::string h = "<table class=\"results\">\n<thead><tr><th rowspan=\"2\">method</th>";
    // dataset header cells spanning their aspects
    for (size_t c = 0; c < t.columns.size();) {
        size_t e = c;
        while (e < t.columns.size() && t.columns[e].dataset == t.columns[c].dataset) {
            ++e;
        }
        h += "<th colspan=\"" + std::to_string(e - c) + "\">" + html_escape(t.columns[c].dataset) + "</th>";
        c = e;
    }
    h += "</tr>\n<tr>";
    for (const auto & c : t.columns) {
        h += "<th>" + html_escape(c.aspect) + "</th>";
    }
    h += "</tr></thead>\n<tbody>\n";
    h += table_rows(t, [](const eval_result::scores & sc) {
        return "<td title=\"" + std::to_string(sc.images) + " images\">" + format_score(sc.map_r) + " / " +
               format_score(sc.prec_1) + "</td>";
    });
    h += "</tbody></table>\n<p class=\"note\">Each cell: mAP@R / Precision@1 (x100), as the reference's "
         "evaluation (pytorch-metric-learning) computes them.</p>\n";
    return h;
}

std::string clustering_table_html(const results_table & t) {
    if (t.columns.empty()) {
        return "";
    }
    const auto num = [](double v) {
        if (std::isnan(v)) {
            return std::string("–");
        }
        char b[32];
        std::snprintf(b, sizeof b, "%.3f", v);
        return std::string(b);
    };
    std::string h = "<table class=\"clustering\">\n<thead><tr><th>method</th>";
    for (const auto & c : t.columns) {
        h += "<th>" + html_escape(c.dataset) + "<br>" + html_escape(c.aspect) + "</th>";
    }
    h += "</tr></thead>\n<tbody>\n";
    size_t seeds = 0;
    bool   wide  = false;
    h += table_rows(t, [&](const eval_result::scores & sc) {
        std::string range;
        bool        fragile = false;
        if (sc.nmi_seeds > 0) {
            seeds   = std::max(seeds, sc.nmi_seeds);
            fragile = sc.nmi_max - sc.nmi_min > 0.05;
            wide |= fragile;
            range = "<br><span class=\"spread\">" + num(sc.nmi_min) + "–" + num(sc.nmi_max) + ", mean " +
                    num(sc.nmi_mean) + (fragile ? " ⚠" : "") + "</span>";
        }
        return std::string("<td") + (fragile ? " class=\"fragile\"" : "") + ">" + num(sc.nmi) + " / " + num(sc.ami) +
               range + "</td>";
    });
    h += "</tbody></table>\n<p class=\"note\">Each cell: NMI / AMI of a k-means clustering with k = the number "
         "of labels, as the reference computes them (faiss, seed 1234, ";
    h += t.all_reference_order ? "rows in the reference's order)"
                               : "rows in the reference's order where the evaluation had it, else by file name: see "
                                 "each setting's row_order)";
    if (seeds > 0) {
        h += "; below, NMI's range and mean over " + std::to_string(seeds) + " other k-means seeds";
    }
    h += ". k-means starts from rows picked by position, so the row order and the seed can move these scores";
    h += wide ? ": ⚠ marks a range wider than 0.05, where one value says little.</p>\n" : ".</p>\n";
    return h;
}

}  // namespace dior::cli
