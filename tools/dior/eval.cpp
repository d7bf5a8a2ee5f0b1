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
    std::string          order         = "reference";
    int                  kmeans_seeds  = 10;
};

struct aspect_result {
    std::string aspect;
    scored_rows rows;
    accuracy    acc;
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

struct spread {
    double mean = NAN, min = NAN, max = NAN;
};

spread spread_of(const std::vector<double> & v) {
    spread s;
    if (v.empty()) {
        return s;
    }
    s.mean = 0;
    s.min = s.max = v[0];
    for (double x : v) {
        s.mean += x / (double)v.size();
        s.min = std::min(s.min, x);
        s.max = std::max(s.max, x);
    }
    return s;
}

json spread_json(const std::vector<int> & seeds, const std::vector<double> & values, const spread & s) {
    return { { "seeds", seeds }, { "values", values }, { "mean", s.mean }, { "min", s.min }, { "max", s.max } };
}

// "0.712 [0.530, 0.886]", or "" without seeds.
std::string spread_text(const std::vector<double> & values, const spread & s) {
    if (values.empty()) {
        return "";
    }
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3f [%.3f, %.3f]", s.mean, s.min, s.max);
    return buf;
}

std::string csv_number(double v) {
    return std::isnan(v) ? std::string("nan") : std::to_string(v);
}

// paths: the setting's vector files or images, in their folder's listing order when `listed`.
std::vector<aspect_result> evaluate_setting(const matrix & x, const std::vector<std::string> & paths, bool listed,
                                            const stored_setting & s, const std::vector<aspect_labels> & all_labels,
                                            const eval_params & ep, row_order order) {
    std::vector<aspect_result> out;
    for (const auto & lab : all_labels) {
        aspect_result res;
        res.aspect = lab.aspect;
        res.rows   = rows_to_score(lab, paths, order, listed);
        if (!lab.by_position.empty() && lab.by_position.size() != paths.size()) {
            std::fprintf(stderr,
                         "warning: %s, %s: %zu images but %zu label rows; the reference pairs them by position "
                         "(the i-th image in name order gets row i)\n",
                         reference_dir_name(s.s).c_str(), lab.aspect.c_str(), paths.size(), lab.by_position.size());
        }
        // Label texts -> integers in sorted order (only equality matters to the metrics).
        std::map<std::string, int> ids;
        for (const auto & t : res.rows.labels) {
            ids.emplace(t, 0);
        }
        int next = 0;
        for (auto & [t, id] : ids) {
            id = next++;
        }
        matrix           sub;
        std::vector<int> labels;
        sub.cols = x.cols;
        sub.rows = res.rows.rows.size();
        for (size_t i = 0; i < res.rows.rows.size(); ++i) {
            const size_t r = res.rows.rows[i];
            sub.data.insert(sub.data.end(), x.data.begin() + (long)(r * x.cols),
                            x.data.begin() + (long)((r + 1) * x.cols));
            labels.push_back(ids[res.rows.labels[i]]);
        }
        if (sub.rows >= 2) {
            res.acc = evaluate(sub, labels, ep);
        } else {
            res.acc.mean_average_precision_at_r = res.acc.precision_at_1 = res.acc.NMI = res.acc.AMI = NAN;
        }
        out.push_back(std::move(res));
    }
    // The aspect named in the setting first.
    std::stable_sort(out.begin(), out.end(), [&](const aspect_result & a, const aspect_result & b) {
        return (s.s.condition && a.aspect == *s.s.condition) > (s.s.condition && b.aspect == *s.s.condition);
    });
    return out;
}

// The setting's rows in its folder's listing order (as imported); false, and nothing changed,
// where the listing does not name the same files.
bool to_listing_order(matrix & x, std::vector<std::string> & paths, const std::vector<std::string> & listing) {
    if (listing.size() != paths.size()) {
        return false;
    }
    std::map<std::string, size_t> row_of;
    for (size_t i = 0; i < paths.size(); ++i) {
        row_of.emplace(paths[i], i);
    }
    matrix                   y;
    std::vector<std::string> p;
    y.cols = x.cols;
    y.rows = x.rows;
    for (const auto & name : listing) {
        const auto it = row_of.find(name);
        if (it == row_of.end()) {
            return false;
        }
        y.data.insert(y.data.end(), x.data.begin() + (long)(it->second * x.cols),
                      x.data.begin() + (long)((it->second + 1) * x.cols));
        p.push_back(name);
    }
    x     = std::move(y);
    paths = std::move(p);
    return true;
}

int run_eval(const eval_options & o) {
    std::unique_ptr<store> st;
    import_result          imported;
    if (!o.embedding_dir.empty()) {
        st       = store::open(":memory:");
        imported = import_reference_tree(*st, o.embedding_dir, o.pattern);
        if (imported.settings == 0) {
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
    for (int i = 1; ep.clustering && i <= o.kmeans_seeds; ++i) {
        ep.spread_seeds.push_back(i);
    }

    std::string csv =
        "setting,dataset,model_id,prompt_type,condition,layer,token,aspect,images,map_r,prec_1,nmi,ami,"
        "nmi_seeds_mean,nmi_seeds_min,nmi_seeds_max,ami_seeds_mean,ami_seeds_min,ami_seeds_max,row_order\n";
    std::map<std::string, std::vector<aspect_labels>> label_cache;
    size_t                                            n_done = 0, n_bad = 0;
    for (const auto & s : settings) {
        const std::string name = reference_dir_name(s.s);
        if (!find_dataset(s.s.dataset)) {
            std::fprintf(stderr, "skipped %s: no labels for dataset '%s'\n", name.c_str(), s.s.dataset.c_str());
            continue;
        }
        std::vector<std::string> paths;
        matrix                   x = st->vectors(s.id, &paths);
        const auto bad = std::find_if(x.data.begin(), x.data.end(), [](float v) { return !std::isfinite(v); });
        if (bad != x.data.end()) {
            const size_t row = (size_t)(bad - x.data.begin()) / x.cols;
            std::fprintf(stderr, "error: %s: the vector of %s holds %s; this setting is not evaluated\n", name.c_str(),
                         printable(paths[row]).c_str(), std::isnan(*bad) ? "NaN" : "an infinite value");
            ++n_bad;
            continue;
        }
        const auto listing = imported.listing.find(s.id);
        const bool listed  = listing != imported.listing.end() && to_listing_order(x, paths, listing->second);
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
        const auto results = evaluate_setting(x, paths, listed, s, labels, ep,
                                              o.order == "sorted" ? row_order::sorted : row_order::reference);
        // The order the setting was scored in: "reference" only where every aspect could use it.
        const bool as_reference =
            std::all_of(results.begin(), results.end(), [](const aspect_result & r) { return r.rows.as_reference; });
        const std::string order_used = o.order == "reference" && as_reference ? "reference" : "sorted";

        const bool seeds = !ep.spread_seeds.empty();
        std::printf(
            "%s\n  %-30s %7s %7s %7s %8s %8s%s\n", name.c_str(), "aspect", "images", "map_r", "prec_1", "nmi", "ami",
            seeds
                ? ("   nmi over " + std::to_string(ep.spread_seeds.size()) + " k-means seeds: mean [min, max]").c_str()
                : "");
        json jr = json::object();
        for (const auto & r : results) {
            const bool   named = s.s.condition && r.aspect == *s.s.condition;
            const spread sn = spread_of(r.acc.NMI_by_seed), sa = spread_of(r.acc.AMI_by_seed);
            std::printf("  %-30s %7zu %7s %7s %8.4f %8.4f   %s\n", (r.aspect + (named ? " *" : "")).c_str(),
                        r.rows.rows.size(), pct(r.acc.mean_average_precision_at_r).c_str(),
                        pct(r.acc.precision_at_1).c_str(), r.acc.NMI, r.acc.AMI,
                        spread_text(r.acc.NMI_by_seed, sn).c_str());
            if (!r.rows.unlabeled.empty()) {
                std::printf("  %-30s %7zu images without a label, left out (names in %s.json)\n", "",
                            r.rows.unlabeled.size(), name.c_str());
            }
            json v = { { "map_r", round1(r.acc.mean_average_precision_at_r) },
                       { "prec_1", round1(r.acc.precision_at_1) },
                       { "nmi", r.acc.NMI },
                       { "ami", r.acc.AMI },
                       { "mean_average_precision_at_r", r.acc.mean_average_precision_at_r },
                       { "precision_at_1", r.acc.precision_at_1 },
                       { "NMI", r.acc.NMI },
                       { "AMI", r.acc.AMI },
                       { "images", r.rows.rows.size() },
                       { "queries", r.acc.n_queries },
                       { "row_order", r.rows.order },
                       { "unlabeled", r.rows.unlabeled },
                       { "missing", r.rows.missing.size() } };
            if (!r.acc.NMI_by_seed.empty()) {
                v["NMI_over_seeds"] = spread_json(ep.spread_seeds, r.acc.NMI_by_seed, sn);
                v["AMI_over_seeds"] = spread_json(ep.spread_seeds, r.acc.AMI_by_seed, sa);
            }
            jr[r.aspect] = v;
            csv += csv_field(name) + "," + csv_field(s.s.dataset) + "," + csv_field(s.s.model_id) + "," +
                   s.s.prompt_type + "," + csv_field(s.s.condition.value_or("None")) + "," + std::to_string(s.s.layer) +
                   "," + std::to_string(s.s.token) + "," + csv_field(r.aspect) + "," +
                   std::to_string(r.rows.rows.size()) + "," + pct(r.acc.mean_average_precision_at_r) + "," +
                   pct(r.acc.precision_at_1) + "," + csv_number(r.acc.NMI) + "," + csv_number(r.acc.AMI) + "," +
                   csv_number(sn.mean) + "," + csv_number(sn.min) + "," + csv_number(sn.max) + "," +
                   csv_number(sa.mean) + "," + csv_number(sa.min) + "," + csv_number(sa.max) + "," + order_used + "\n";
        }
        size_t missing = 0;
        for (const auto & r : results) {
            missing = std::max(missing, r.rows.missing.size());
        }
        if (!results.empty()) {
            std::printf("  rows in %s\n", results[0].rows.order.c_str());
        }
        if (missing > 0) {
            std::printf(
                "  %zu metadata rows have no vector in this setting: scored without them (the reference's "
                "evaluate.py stops on such a setting)\n",
                missing);
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
                              { "row_order", order_used },
                              { "kmeans_seed", ep.kmeans_seed },
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
    cmd->add_option("--row-order", o->order,
                    "reference: rows in the order the reference's evaluate.py reads them (metadata order; "
                    "cub200: the folder's listing); sorted: by file name. NMI / AMI and exact ties depend on it")
        ->check(CLI::IsMember({ "reference", "sorted" }))
        ->default_str("reference");
    cmd->add_option("--kmeans-seeds", o->kmeans_seeds,
                    "NMI / AMI also over k-means seeds 1..N: mean, min and max beside the reference's seed (0: none)")
        ->check(CLI::Range(0, 1000))
        ->default_str("10");
    cmd->callback([o, &exit_code] {
        if (o->db.empty()) {
            o->db = "embeddings.db";
        }
        exit_code = run_eval(*o);
    });
}

}  // namespace dior::cli
