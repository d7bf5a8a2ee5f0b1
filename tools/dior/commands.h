// The dior command-line tool: one file per subcommand, sharing the option helpers below.
#pragma once

#include "dior.h"

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dior::cli {

// Exit statuses (documented in README.md).
constexpr int exit_ok      = 0;  // every image embedded
constexpr int exit_fatal   = 1;  // bad arguments, model not loadable, nothing embedded
constexpr int exit_partial = 2;  // some images failed (reported); the others were embedded
// 128 + signal: SIGINT, SIGTERM or SIGHUP stopped the run after committing the current image

// -hf OWNER/NAME[:QUANT]: the text model and its mmproj from the Hugging Face hub (hub_fetch_model).
struct hub_source {
    std::string spec, token;
    bool        offline = false;
    void        add(CLI::App & app);
    // With -hf given: downloads what the cache lacks (a progress bar on stderr) and sets `model`
    // and, unless the user named one, `mmproj`. A -m given as well is refused.
    void fetch(std::string & model, std::string & mmproj) const;
};

// Options every model-using subcommand shares.
struct model_options {
    model_params params;
    hub_source   hf;
    std::string  processor   = "fast";
    bool         mtmd_resize = false;  // older spelling of --image-processor mtmd
    bool         strict      = false;  // --strict: every computation in F32
    std::string  image_batch = "auto";
    void         add(CLI::App & app);

    model_params resolved() const;
    // -hf: the files into params (once, before resolved()).
    void fetch() { hf.fetch(params.model_path, params.mmproj_path); }

    // The options that change vectors, recorded with every setting. The slow (Pillow) processor
    // and the vision encoder's exact attention write no word of their own: they were the only
    // choices before, so older stores keep resuming with them.
    std::string engine_options() const;
};

// Writes settings of a store as .npy matrices (rows = images, ordered by path) with their row
// names, plus manifest.json describing settings, images and failures.
void export_npy(const store & st, const std::vector<int64_t> & setting_ids, const std::string & dir);

// Writes settings in the reference's JSON layout: DIR/<reference_dir_name>/<image stem>.json.
void export_json(const store & st, const std::vector<int64_t> & setting_ids, const std::string & dir);

// Reads setting folders of the reference's JSON layout (names matching the glob) into a store,
// each setting whole or not at all: a bad file (not JSON, values that are not float32 numbers,
// mixed widths) is reported on stderr and its setting left out.
struct import_result {
    size_t settings = 0, vectors = 0, failed = 0;
    // setting id -> its vector files' names in the folder's listing order (the reference's glob
    // reads them so, unsorted: cub200's evaluation order)
    std::map<int64_t, std::vector<std::string>> listing;
};
import_result import_reference_tree(store & st, const std::string & dir, const std::string & pattern);

void register_embed(CLI::App & app, int & exit_code);
void register_bench(CLI::App & app, int & exit_code);
void register_export(CLI::App & app, int & exit_code);
void register_import(CLI::App & app, int & exit_code);
void register_status(CLI::App & app, int & exit_code);
void register_eval(CLI::App & app, int & exit_code);
void register_bench_eval(CLI::App & app, int & exit_code);
void register_bench_clip(CLI::App & app, int & exit_code);
void register_search(CLI::App & app, int & exit_code);
void register_bench_search(CLI::App & app, int & exit_code);
void register_report(CLI::App & app, int & exit_code);
void register_serve(CLI::App & app, int & exit_code);
void register_datasets(CLI::App & app, int & exit_code);
void register_merge(CLI::App & app, int & exit_code);
void register_embed_text(CLI::App & app, int & exit_code);

}  // namespace dior::cli
