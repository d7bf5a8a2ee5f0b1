// dior status: what a store holds, and which images failed and why.
#include "commands.h"

#include <filesystem>
#include <memory>

namespace dior::cli {

void register_status(CLI::App & app, int & exit_code) {
    auto   db  = std::make_shared<std::string>("embeddings.db");
    auto * cmd = app.add_subcommand("status", "list a store's settings and failed images");
    cmd->add_option("--db", *db, "the store");
    cmd->callback([db, &exit_code] {
        if (!std::filesystem::exists(*db)) {
            throw error("store not found: " + *db);
        }
        auto       st     = store::open(*db);
        const auto images = st->images();
        std::printf("store %s: %zu images\n\n%5s %8s  %s\n", db->c_str(), images.size(), "id", "vectors", "setting");
        for (const auto & s : st->settings()) {
            std::printf("%5lld %8lld  %s\n", (long long)s.id, (long long)s.n_vectors, reference_dir_name(s.s).c_str());
        }
        const auto failures = st->failures();
        std::printf("\n%zu failed images%s\n", failures.size(),
                    failures.empty() ? "" : " (re-running embed retries them):");
        for (const auto & f : failures) {
            std::printf("  %s: %s\n", f.path.c_str(), f.reason.c_str());
        }
        exit_code = exit_ok;
    });
}

}  // namespace dior::cli
