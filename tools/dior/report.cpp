// dior report: one self-contained HTML file (thumbnails embedded) from a store and its evaluation:
// the results table in the paper's layout, a bar chart per aspect, and for a few query images their
// nearest neighbours under each condition, side by side.
#include "chart.h"
#include "commands.h"
#include "html.h"
#include "query.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

namespace fs = std::filesystem;

namespace dior::cli {
namespace {

struct report_options {
    std::string              db = "embeddings.db";
    std::string              eval_dir;
    std::string              out = "report.html";
    std::string              charts_dir;
    bool                     png = false;
    std::vector<std::string> queries;
    int                      n_queries = 3;
    size_t                   k         = 5;
    int                      thumb     = 120;
    setting_filter           filter;
};

const char * k_style = R"(<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; margin: 18px 0 6px; }
table.results, table.clustering { border-collapse: collapse; font-size: 13px; }
table.results th, table.results td, table.clustering th, table.clustering td { border: 1px solid #ccc; padding: 4px 8px; text-align: center; }
table.results th.method, table.clustering th.method { text-align: left; font-weight: normal; }
td.none { color: #aaa; } p.note, p.empty { color: #666; font-size: 12px; }
span.spread { color: #666; font-size: 11px; } td.fragile { background: #fff4e0; }
.charts svg { margin: 8px 16px 8px 0; border: 1px solid #eee; }
.nrow { display: flex; align-items: flex-start; gap: 6px; margin: 4px 0; }
.nrow .label { width: 220px; font-size: 12px; }
figure { margin: 0; text-align: center; font-size: 11px; color: #555; }
figure.query img { outline: 3px solid #3b6ea5; }
img.thumb { display: block; max-width: 200px; max-height: 200px; }
img.missing { opacity: 0.7; }
</style>
)";

int run_report(const report_options & o) {
    if (o.png && o.charts_dir.empty()) {
        throw error("--png writes the charts into --charts-dir DIR: give that too");
    }
    auto st = open_existing_store(o.db);

    std::string body;
    // --- results ---------------------------------------------------------------------------------
    body += "<h2>Results</h2>\n";
    results_table table;
    if (o.eval_dir.empty()) {
        body +=
            "<p class=\"empty\">No evaluation given: run <code>dior eval --db STORE -o DIR</code>, then "
            "<code>dior report --eval DIR</code>.</p>\n";
    } else {
        table = make_results_table(load_eval_dir(o.eval_dir));
        body += results_table_html(table);
        body += "<h2>Clustering</h2>\n" + clustering_table_html(table);
        const auto charts = results_charts(table);
        if (!charts.empty()) {
            body += "<h2>Per aspect</h2>\n<div class=\"charts\">\n";
            for (const auto & c : charts) {
                body += chart_svg(c);
            }
            body += "</div>\n";
        }
        if (!o.charts_dir.empty()) {
            fs::create_directories(o.charts_dir);
            for (size_t i = 0; i < charts.size(); ++i) {
                std::string name = charts[i].title;
                for (char & c : name) {
                    c = (std::isalnum((unsigned char)c) || c == '-') ? c : '_';
                }
                const fs::path base = fs::path(o.charts_dir) / (std::to_string(i + 1) + "-" + name);
                std::ofstream(base.string() + ".svg") << chart_svg(charts[i]);
                if (o.png) {
                    write_chart_png(charts[i], base.string() + ".png");
                }
            }
        }
    }

    // --- neighbours ------------------------------------------------------------------------------
    std::vector<stored_setting> sets;
    try {
        sets = select_settings(*st, o.filter);
    } catch (const error &) {
        if (!o.filter.ids.empty() || !o.filter.conditions.empty() || !o.filter.method.empty()) {
            throw;
        }
    }
    std::map<std::string, std::string> thumbs;  // the same image appears many times: encoded once
    const auto thumb = [&](const std::string & path, const std::string & caption, const char * cls) {
        auto it = thumbs.find(path);
        if (it == thumbs.end()) {
            it = thumbs.emplace(path, thumbnail_img(path, o.thumb, path)).first;
        }
        return std::string("<figure class=\"") + cls + "\">" + it->second + "<figcaption>" + html_escape(caption) +
               "</figcaption></figure>";
    };
    if (!sets.empty()) {
        std::vector<std::shared_ptr<const setting_index>> ix;
        for (const auto & s : sets) {
            ix.push_back(load_index(*st, s, metric::l2));
        }
        std::vector<std::string> queries = o.queries;
        if (queries.empty() && !ix[0]->paths.empty()) {
            const auto & p = ix[0]->paths;
            const size_t n = std::min<size_t>((size_t)std::max(o.n_queries, 0), p.size());
            for (size_t i = 0; i < n; ++i) {
                queries.push_back(p[i * p.size() / n]);
            }
        }
        body += "<h2>Nearest neighbours</h2>\n<p class=\"note\">Per query image, its " + std::to_string(o.k) +
                " nearest stored images (Euclidean distance, the query itself left out) under each setting that "
                "holds it.</p>\n";
        for (const auto & q : queries) {
            const auto known = stored_paths(*st, q, "");
            body += "<h3>" + html_escape(fs::path(q).filename().string()) + "</h3>\n";
            bool any = false;
            for (const auto & x : ix) {
                const auto row = stored_row(*x, known);
                if (!row) {
                    continue;
                }
                any            = true;
                const auto v   = x->index.vector(*row);
                const auto nbs = x->index.search(v.data(), v.size(), o.k, row);
                body += "<div class=\"nrow\"><div class=\"label\">" + html_escape(describe(x->s)) + "</div>" +
                        thumb(q, "query", "query");
                for (const auto & nb : nbs) {
                    char d[32];
                    std::snprintf(d, sizeof d, "%.3g", nb.distance);
                    body += thumb(x->paths[nb.row], d, "neighbor");
                }
                body += "</div>\n";
            }
            if (!any) {
                body += "<p class=\"empty\">No selected setting holds this image.</p>\n";
            }
        }
    }

    char              when[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    const std::string page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>dior report: " +
                             html_escape(fs::path(o.db).filename().string()) + "</title>\n" + k_style +
                             "</head><body>\n<h1>dior report: " + html_escape(fs::path(o.db).filename().string()) +
                             "</h1>\n<p class=\"note\">" + std::to_string(st->settings().size()) + " settings, " +
                             std::to_string(st->images().size()) + " images; written " + when + " by dior " +
                             DIOR_VERSION + ".</p>\n" + body + "</body></html>\n";
    const fs::path tmp = o.out + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary);
        out << page;
        if (!out) {
            throw error("cannot write " + printable(o.out));
        }
    }
    fs::rename(tmp, o.out);
    std::fprintf(stderr, "report written to %s (%zu KB)\n", printable(o.out).c_str(), page.size() / 1024);
    return exit_ok;
}

}  // namespace

void register_report(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<report_options>();
    auto * cmd = app.add_subcommand("report", "one self-contained HTML report: results table, charts, neighbours");
    cmd->add_option("--db", o->db, "the store")->default_str("embeddings.db");
    cmd->add_option("--eval", o->eval_dir, "the folder dior eval -o wrote (the results table and charts)");
    cmd->add_option("-o,--out", o->out, "the HTML file")->default_str("report.html");
    cmd->add_option("--charts-dir", o->charts_dir, "also write each chart as an SVG file here");
    cmd->add_flag("--png", o->png, "with --charts-dir: each chart as a PNG file too");
    cmd->add_option("--query", o->queries, "query images for the neighbours (repeatable; default: a few stored ones)");
    cmd->add_option("--queries", o->n_queries, "how many stored images to show when no --query is given")
        ->default_str("3");
    cmd->add_option("-k", o->k, "neighbours per query and setting")->default_str("5");
    cmd->add_option("--thumb-size", o->thumb, "longer side of the thumbnails, in pixels")->default_str("120");
    cmd->add_option("--setting", o->filter.ids, "neighbours under these settings only (repeatable)");
    cmd->add_option("-c,--condition", o->filter.conditions, "neighbours under settings of this condition");
    cmd->add_option("--method", o->filter.method, "neighbours under settings of this method");
    cmd->add_option("--dataset", o->filter.dataset, "neighbours under settings of this dataset");
    cmd->callback([o, &exit_code] { exit_code = run_report(*o); });
}

}  // namespace dior::cli
