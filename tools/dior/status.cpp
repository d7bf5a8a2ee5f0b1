// dior status: what a store holds, and which images failed and why.
#include "commands.h"

#include <filesystem>
#include <memory>

namespace dior::cli {

void register_status(CLI::App & app, int & exit_code) {
    auto   db    = std::make_shared<std::string>("embeddings.db");
    auto   check = std::make_shared<bool>(false);
    auto * cmd   = app.add_subcommand("status", "list a store's settings and failed images");
    cmd->add_option("--db", *db, "the store");
    cmd->add_flag("--check", *check, "also run SQLite's integrity check over the whole file");
    cmd->callback([db, check, &exit_code] {
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
        for (const auto & s : st->settings()) {
            std::printf("%5lld %8lld  %s\n", (long long)s.id, (long long)s.n_vectors, reference_dir_name(s.s).c_str());
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
