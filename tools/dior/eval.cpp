// dior eval: conditional retrieval scores of stored settings, as the reference's evaluation
// (pytorch-metric-learning) computes them, for every labelled aspect of the setting's dataset.
#include "commands.h"
#include "dior_json.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {
namespace {

struct eval_options {
    std::string          db;
    std::string          embedding_dir;
    std::string          pattern = "*";
    std::vector<int64_t> ids;
    std::string          out_dir = "eval-results";
    label_sources        labels;
    bool                 no_clustering = false;
};

struct aspect_result {
    std::string              aspect;
    size_t                   n_images = 0;
    accuracy                 acc;
    std::vector<std::string> unlabeled;  // images of the setting without a label for this aspect
};

// One decimal of x100, as the reference prints.
std::string pct(double v) {
    if (std::isnan(v)) {
        return "nan";
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f", v * 100);
    return buf;
}

double round1(double v) {
    return std::round(v * 1000.0) / 10.0;
}

std::string csv_field(const std::string & s) {
    if (s.find_first_of(",\"\n") == std::string::npos) {
        return s;
    }
    std::string q = "\"";
    for (char c : s) {
        q += c == '"' ? std::string("\"\"") : std::string(1, c);
    }
    return q + "\"";
}

std::vector<aspect_result> evaluate_setting(const matrix & x, const std::vector<std::string> & paths,
                                            const stored_setting & s, const std::vector<aspect_labels> & all_labels,
                                            const eval_params & ep) {
    std::vector<aspect_result> out;
    for (const auto & lab : all_labels) {
        // Rows with a label for this aspect; label texts -> integers in sorted order.
        std::vector<size_t>        rows;
        std::vector<std::string>   texts;
        std::map<std::string, int> ids;
        aspect_result              res;
        const auto                 found = label_images(lab, paths);
        if (!lab.by_position.empty() && lab.by_position.size() != paths.size()) {
            std::fprintf(stderr,
                         "warning: %s, %s: %zu images but %zu label rows; the reference pairs them by position "
                         "(the i-th image in name order gets row i)\n",
                         reference_dir_name(s.s).c_str(), lab.aspect.c_str(), paths.size(), lab.by_position.size());
        }
        for (size_t r = 0; r < paths.size(); ++r) {
            if (found[r]) {
                rows.push_back(r);
                texts.push_back(*found[r]);
                ids.emplace(*found[r], 0);
            } else {
                res.unlabeled.push_back(paths[r]);
            }
        }
        int next = 0;
        for (auto & [t, id] : ids) {
            id = next++;
        }
        matrix           sub;
        std::vector<int> labels;
        sub.cols = x.cols;
        sub.rows = rows.size();
        for (size_t i = 0; i < rows.size(); ++i) {
            sub.data.insert(sub.data.end(), x.data.begin() + (long)(rows[i] * x.cols),
                            x.data.begin() + (long)((rows[i] + 1) * x.cols));
            labels.push_back(ids[texts[i]]);
        }
        res.aspect   = lab.aspect;
        res.n_images = rows.size();
        if (rows.size() >= 2) {
            res.acc = evaluate(sub, labels, ep);
        } else {
            res.acc.mean_average_precision_at_r = res.acc.precision_at_1 = res.acc.NMI = res.acc.AMI = NAN;
        }
        out.push_back(res);
    }
    // The aspect named in the setting first.
    std::stable_sort(out.begin(), out.end(), [&](const aspect_result & a, const aspect_result & b) {
        return (s.s.condition && a.aspect == *s.s.condition) > (s.s.condition && b.aspect == *s.s.condition);
    });
    return out;
}

int run_eval(const eval_options & o) {
    std::unique_ptr<store> st;
    if (!o.embedding_dir.empty()) {
        st = store::open(":memory:");
        if (import_reference_tree(*st, o.embedding_dir, o.pattern).settings == 0) {
            throw error("no setting folder in " + o.embedding_dir + " matches '" + o.pattern + "'");
        }
    } else {
        if (!fs::exists(o.db)) {
            throw error("store not found: " + o.db + " (or give --embedding-dir DIR for the reference's JSON layout)");
        }
        st = store::open(o.db, true);
    }
    std::vector<stored_setting> settings;
    for (const auto & s : st->settings()) {
        if (o.ids.empty() || std::find(o.ids.begin(), o.ids.end(), s.id) != o.ids.end()) {
            settings.push_back(s);
        }
    }
    if (settings.empty()) {
        throw error("no settings to evaluate");
    }
    std::sort(settings.begin(), settings.end(), [](const stored_setting & a, const stored_setting & b) {
        return reference_dir_name(a.s) < reference_dir_name(b.s);
    });
    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) {
        throw error("cannot create " + o.out_dir + ": " + ec.message());
    }
    eval_params ep;
    ep.clustering = !o.no_clustering;

    std::string csv = "setting,dataset,model_id,prompt_type,condition,layer,token,aspect,images,map_r,prec_1,nmi,ami\n";
    std::map<std::string, std::vector<aspect_labels>> label_cache;
    size_t                                            n_done = 0, n_bad = 0;
    for (const auto & s : settings) {
        const std::string name = reference_dir_name(s.s);
        if (!find_dataset(s.s.dataset)) {
            std::fprintf(stderr, "skipped %s: no labels for dataset '%s'\n", name.c_str(), s.s.dataset.c_str());
            continue;
        }
        std::vector<std::string> paths;
        const matrix             x = st->vectors(s.id, &paths);
        const auto bad = std::find_if(x.data.begin(), x.data.end(), [](float v) { return !std::isfinite(v); });
        if (bad != x.data.end()) {
            const size_t row = (size_t)(bad - x.data.begin()) / x.cols;
            std::fprintf(stderr, "error: %s: the vector of %s holds %s; this setting is not evaluated\n", name.c_str(),
                         printable(paths[row]).c_str(), std::isnan(*bad) ? "NaN" : "an infinite value");
            ++n_bad;
            continue;
        }
        std::vector<aspect_labels> labels;
        if (s.s.dataset == "cub200") {  // labels come from the image names
            label_sources src = o.labels;
            src.images        = paths;
            labels            = load_labels("cub200", src);
        } else {
            auto it = label_cache.find(s.s.dataset);
            if (it == label_cache.end()) {
                it = label_cache.emplace(s.s.dataset, load_labels(s.s.dataset, o.labels)).first;
            }
            labels = it->second;
        }
        const auto results = evaluate_setting(x, paths, s, labels, ep);

        std::printf("%s\n  %-30s %7s %7s %7s %8s %8s\n", name.c_str(), "aspect", "images", "map_r", "prec_1", "nmi",
                    "ami");
        json jr = json::object();
        for (const auto & r : results) {
            const bool named = s.s.condition && r.aspect == *s.s.condition;
            std::printf("  %-30s %7zu %7s %7s %8.4f %8.4f\n", (r.aspect + (named ? " *" : "")).c_str(), r.n_images,
                        pct(r.acc.mean_average_precision_at_r).c_str(), pct(r.acc.precision_at_1).c_str(), r.acc.NMI,
                        r.acc.AMI);
            if (!r.unlabeled.empty()) {
                std::printf("  %-30s %7zu images without a label, left out (names in %s.json)\n", "",
                            r.unlabeled.size(), name.c_str());
            }
            jr[r.aspect] = { { "map_r", round1(r.acc.mean_average_precision_at_r) },
                             { "prec_1", round1(r.acc.precision_at_1) },
                             { "nmi", r.acc.NMI },
                             { "ami", r.acc.AMI },
                             { "mean_average_precision_at_r", r.acc.mean_average_precision_at_r },
                             { "precision_at_1", r.acc.precision_at_1 },
                             { "NMI", r.acc.NMI },
                             { "AMI", r.acc.AMI },
                             { "images", r.n_images },
                             { "queries", r.acc.n_queries },
                             { "unlabeled", r.unlabeled } };
            csv += csv_field(name) + "," + csv_field(s.s.dataset) + "," + csv_field(s.s.model_id) + "," +
                   s.s.prompt_type + "," + csv_field(s.s.condition.value_or("None")) + "," + std::to_string(s.s.layer) +
                   "," + std::to_string(s.s.token) + "," + csv_field(r.aspect) + "," + std::to_string(r.n_images) +
                   "," + pct(r.acc.mean_average_precision_at_r) + "," + pct(r.acc.precision_at_1) + "," +
                   std::to_string(r.acc.NMI) + "," + std::to_string(r.acc.AMI) + "\n";
        }
        std::printf("\n");
        const json result = { { "setting", name },
                              { "dataset", s.s.dataset },
                              { "model_id", s.s.model_id },
                              { "prompt_type", s.s.prompt_type },
                              { "aspect", s.s.condition ? json(*s.s.condition) : json(nullptr) },
                              { "num_layer", s.s.layer },
                              { "num_token", s.s.token },
                              { "embedsrc", s.s.source },
                              { "results", jr } };
        std::ofstream(fs::path(o.out_dir) / (name + ".json")) << json_text(result, 2) << "\n";
        ++n_done;
    }
    std::ofstream(fs::path(o.out_dir) / "summary.csv") << csv;
    std::fprintf(stderr, "evaluated %zu settings; results in %s (one JSON per setting, summary.csv)\n", n_done,
                 o.out_dir.c_str());
    return n_done == 0 ? exit_fatal : n_bad ? exit_partial : exit_ok;
}

}  // namespace

void register_eval(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<eval_options>();
    auto * cmd = app.add_subcommand("eval", "score stored settings: mAP@R, P@1, NMI, AMI for every labelled aspect");
    cmd->add_option("--db", o->db, "the store")->default_str("embeddings.db");
    cmd->add_option("--embedding-dir", o->embedding_dir, "a tree in the reference's JSON layout instead of a store");
    cmd->add_option("--setting-pattern", o->pattern, "with --embedding-dir: only folders matching this glob");
    cmd->add_option("--setting", o->ids, "only these setting ids of the store (see dior status)")
        ->allow_extra_args(false);
    cmd->add_option("-o,--out-dir", o->out_dir, "folder for one JSON per setting and summary.csv");
    cmd->add_option("--metadata-dir", o->labels.metadata_dir,
                    "folder with deepfashion_metadata.csv and "
                    "movie_posters_metadata.tsv (default: shipped copies)");
    cmd->add_option("--synthetic-cars-csv", o->labels.synthetic_cars_csv, "the synthetic cars metadata CSV");
    cmd->add_option("--cars196-labels", o->labels.cars196_labels, "CSV of file,class for the Stanford Cars test split");
    cmd->add_flag("--no-clustering", o->no_clustering, "skip NMI and AMI (k-means)");
    cmd->callback([o, &exit_code] {
        if (o->db.empty()) {
            o->db = "embeddings.db";
        }
        exit_code = run_eval(*o);
    });
}

}  // namespace dior::cli
