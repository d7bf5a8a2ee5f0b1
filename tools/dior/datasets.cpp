// dior datasets list | download | check: the reference's five datasets on disk.
#include "commands.h"
#include "progress.h"

#include <cstdio>

namespace dior::cli {
namespace {

struct datasets_options {
    std::vector<std::string> names;
    std::string              datasets_dir = "datasets";
    std::string              url, sha256;
    label_sources            labels;
    bool                     all_names = false;  // check: list every missing or extra image
};

std::vector<std::string> expand(const std::vector<std::string> & names) {
    std::vector<std::string> out;
    for (const auto & n : names) {
        if (n == "all") {
            for (const auto & d : datasets()) {
                out.push_back(d.name);
            }
        } else {
            out.push_back(n);
        }
    }
    return out;
}

int run_list() {
    std::printf("%-15s %7s  %-9s  %s\n", "dataset", "images", "download", "aspects");
    for (const auto & d : datasets()) {
        std::string aspects;
        for (const auto & a : d.aspects) {
            aspects += (aspects.empty() ? "" : ", ") + (a ? *a : std::string("(none)"));
        }
        const bool automatic = d.name == "cub200" || d.name == "movie_posters";
        std::printf("%-15s %7zu  %-9s  %s\n", d.name.c_str(), d.images, automatic ? "automatic" : "manual",
                    aspects.c_str());
    }
    return exit_ok;
}

int run_download(const datasets_options & o) {
    const auto names = expand(o.names);
    if ((!o.url.empty() || !o.sha256.empty()) && names.size() != 1) {
        throw error("--url and --sha256 name one archive: give one dataset");
    }
    int status = exit_ok;
    for (const auto & name : names) {
        byte_progress            bar;
        dataset_download_options d;
        d.datasets_dir = o.datasets_dir;
        d.url          = o.url;
        d.sha256       = o.sha256;
        d.progress     = [&bar](const std::string & f, uint64_t done, uint64_t total) { bar.update(f, done, total); };
        const dataset_download_result r = download_dataset(name, d);
        if (!r.manual_steps.empty()) {
            std::printf("[%s] not downloaded:\n%s\n", name.c_str(), r.manual_steps.c_str());
            status = exit_partial;
        } else {
            std::printf("[%s] %s %zu images in %s\n", name.c_str(), r.already ? "already there:" : "done:", r.images,
                        printable(r.folder).c_str());
        }
    }
    return status;
}

void print_names(const char * what, const std::vector<std::string> & names, bool all) {
    if (names.empty()) {
        return;
    }
    std::printf("  %s: %zu\n", what, names.size());
    const size_t shown = all ? names.size() : std::min<size_t>(names.size(), 10);
    for (size_t i = 0; i < shown; ++i) {
        std::printf("    %s\n", printable(names[i]).c_str());
    }
    if (shown < names.size()) {
        std::printf("    ... (--all lists them all)\n");
    }
}

int run_check(const datasets_options & o) {
    int status = exit_ok;
    for (const auto & name : expand(o.names)) {
        const dataset_check_result r = check_dataset(name, o.datasets_dir, o.labels);
        std::printf("[%s] %s: %s, %zu images", name.c_str(), printable(r.folder).c_str(),
                    r.ok() ? "complete" : "INCOMPLETE", r.images);
        if (r.expected) {
            std::printf(" (the reference evaluates %zu)", r.expected);
        }
        std::printf("\n");
        print_names("missing", r.missing, o.all_names);
        print_names("extra (no label)", r.extra, o.all_names);
        for (const auto & n : r.notes) {
            std::printf("  %s\n", printable(n).c_str());
        }
        if (!r.ok()) {
            status = exit_partial;
        }
    }
    return status;
}

}  // namespace

void register_datasets(CLI::App & app, int & exit_code) {
    auto * cmd = app.add_subcommand("datasets", "the reference's datasets: list, download, check");
    cmd->require_subcommand(1);
    auto o = std::make_shared<datasets_options>();

    auto * list = cmd->add_subcommand("list", "the datasets, their sizes and aspects");
    list->callback([&exit_code] { exit_code = run_list(); });

    auto * dl = cmd->add_subcommand(
        "download", "fetch cub200 and movie_posters into DIR/NAME (flat), or print the manual steps of the others");
    dl->add_option("names", o->names, "datasets (or all)")->required();
    dl->add_option("--datasets-dir", o->datasets_dir, "where the dataset folders go")->default_str("datasets");
    dl->add_option("--url", o->url, "fetch the archive from this mirror instead");
    dl->add_option("--sha256", o->sha256, "the mirror's archive has this SHA-256 (instead of the published MD5)");
    dl->callback([o, &exit_code] { exit_code = run_download(*o); });

    auto * ck = cmd->add_subcommand("check", "compare DIR/NAME with the images the reference's labels name");
    ck->add_option("names", o->names, "datasets (or all)")->required();
    ck->add_option("--datasets-dir", o->datasets_dir, "where the dataset folders are")->default_str("datasets");
    ck->add_option("--metadata-dir", o->labels.metadata_dir,
                   "deepfashion_metadata.csv and movie_posters_metadata.tsv (default: the copies shipped)");
    ck->add_option("--synthetic-cars-csv", o->labels.synthetic_cars_csv, "the synthetic cars metadata CSV");
    ck->add_option("--cars196-labels", o->labels.cars196_labels, "CSV of file,class for the Stanford Cars test split");
    ck->add_flag("--all", o->all_names, "list every missing or extra image (default: the first 10)");
    ck->callback([o, &exit_code] { exit_code = run_check(*o); });
}

}  // namespace dior::cli
