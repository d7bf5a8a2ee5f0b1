// dior status: what a store holds, and which images failed and why.
#include "commands.h"

#include <algorithm>
#include <filesystem>
#include <memory>

namespace dior::cli {

void register_status(CLI::App & app, int & exit_code) {
    auto   db    = std::make_shared<std::string>("embeddings.db");
    auto   check = std::make_shared<bool>(false);
    auto   texts = std::make_shared<bool>(false);
    auto   only  = std::make_shared<std::vector<int64_t>>();
    auto * cmd   = app.add_subcommand("status", "list a store's settings and failed images");
    cmd->add_option("--db", *db, "the store");
    cmd->add_flag("--check", *check, "also run SQLite's integrity check over the whole file");
    cmd->add_flag("--texts", *texts, "also print the generated text of every image (generating settings)");
    cmd->add_option("--setting", *only, "with --texts: only these setting ids")->allow_extra_args(false);
    cmd->callback([db, check, texts, only, &exit_code] {
        if (!std::filesystem::exists(*db)) {
            throw error("store not found: " + *db);
        }
        auto st = store::open(*db, true);
        if (*check) {
            const auto problems = st->check();
            if (problems.size() != 1 || problems[0] != "ok") {
                std::string list;
                for (size_t i = 0; i < problems.size() && i < 10; ++i) {
                    list += "\n  " + problems[i];
                }
                throw store_error("store " + *db + " is damaged (integrity check failed):" + list +
                                  "\nrestore it from a copy, or export what is readable and start a new store");
            }
            std::printf("integrity check: ok\n");
        }
        const auto images = st->images();
        std::printf("store %s: %zu images\n\n%5s %8s  %s\n", db->c_str(), images.size(), "id", "vectors", "setting");
        const auto settings = st->settings();
        for (const auto & s : settings) {
            std::printf("%5lld %8lld  %s\n", (long long)s.id, (long long)s.n_vectors, reference_dir_name(s.s).c_str());
        }
        for (const auto & s : settings) {
            const bool wanted = only->empty() || std::find(only->begin(), only->end(), s.id) != only->end();
            if (!*texts || !wanted || s.s.max_new_tokens == 0) {
                continue;
            }
            std::vector<std::string> paths, t;
            st->vectors(s.id, &paths, &t);
            std::printf("\nsetting %lld: generated text%s\n", (long long)s.id,
                        s.s.text_mode == "whole" ? " (the whole sequence, as embedded)" : "");
            for (size_t i = 0; i < paths.size() && i < t.size(); ++i) {
                std::printf("  %s: %s\n", printable(paths[i]).c_str(), printable(t[i]).c_str());
            }
        }
        const auto failures = st->failures();
        std::printf("\n%zu failed images%s\n", failures.size(),
                    failures.empty() ? "" : " (re-running embed retries them):");
        for (const auto & f : failures) {
            std::printf("  %s: %s\n", printable(f.path).c_str(), printable(f.reason).c_str());
        }
        exit_code = exit_ok;
    });
}

}  // namespace dior::cli
