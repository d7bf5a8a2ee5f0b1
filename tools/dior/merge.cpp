// dior merge: the stores of sharded runs (dior embed --shard I/N) into one.
#include "commands.h"

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace dior::cli {
namespace {

struct merge_options {
    std::vector<std::string> inputs;
    std::string              out;
};

int run_merge(const merge_options & o) {
    std::error_code ec;
    for (const auto & in : o.inputs) {
        if (!fs::is_regular_file(in, ec)) {
            throw error("no store " + in + " (check the path)");
        }
        if (fs::equivalent(in, o.out, ec)) {
            throw error(in + " is both an input and the output: merge into another file with -o");
        }
    }
    // Each input in its own transaction: a conflict stops the merge, and what was merged before
    // it stays (the message says which input conflicted; the earlier ones are listed above it).
    auto   out       = store::open(o.out);
    size_t added_now = 0;
    for (const auto & in : o.inputs) {
        const store::merge_report r = out->merge(in);
        std::printf("%s: %zu settings (%zu new), %zu images new, %zu vectors new, %zu already here, %zu failures\n",
                    printable(in).c_str(), r.settings_added + r.settings_known, r.settings_added, r.images_added,
                    r.vectors_added, r.vectors_known, r.failures_added);
        added_now += r.vectors_added;
    }
    size_t n_settings = 0, n_vectors = 0;
    for (const auto & s : out->settings()) {
        ++n_settings;
        n_vectors += (size_t)s.n_vectors;
    }
    std::printf("merged %zu stores into %s: %zu settings, %zu vectors in all (%zu new)\n", o.inputs.size(),
                printable(o.out).c_str(), n_settings, n_vectors, added_now);
    return exit_ok;
}

}  // namespace

void register_merge(CLI::App & app, int & exit_code) {
    auto * cmd = app.add_subcommand("merge", "join stores (e.g. of dior embed --shard runs) into one");
    auto   o   = std::make_shared<merge_options>();
    cmd->add_option("stores", o->inputs, "the stores to merge")->required();
    cmd->add_option("-o,--out", o->out, "the merged store (created if missing, added to otherwise)")->required();
    cmd->callback([o, &exit_code] { exit_code = run_merge(*o); });
}

}  // namespace dior::cli
