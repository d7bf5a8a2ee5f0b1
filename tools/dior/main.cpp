// dior: conditional image embeddings from the command line.
#include "commands.h"

#include <cstdlib>
#include <unistd.h>

namespace {

// OpenBLAS (evaluation, and ggml's BLAS backend for large matrix products) reads its kernel choice
// and its threads' spinning time when it loads, libgomp (ggml's CPU threads) its spinning time:
// start again with the settings that suit (once: the second start finds them set).
void use_fast_threads(char ** argv) {
    const auto env = dior::startup_environment();
    for (const auto & [name, value] : env) {
        if (setenv(name.c_str(), value.c_str(), 1) != 0) {
            return;
        }
    }
    if (!env.empty()) {
        execv("/proc/self/exe", argv);  // returns only on failure: go on as the libraries are
        for (const auto & [name, value] : env) {
            unsetenv(name.c_str());
        }
    }
}

// llama.cpp spells the hub options -hf and -hft; CLI11 takes one-letter short names only, so
// they are read as their long names.
void llama_spellings(int argc, char ** argv) {
    static char hf_repo[] = "--hf-repo", hf_token[] = "--hf-token";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--") {
            return;
        }
        if (a == "-hf") {
            argv[i] = hf_repo;
        } else if (a == "-hft") {
            argv[i] = hf_token;
        }
    }
}

}  // namespace

int main(int argc, char ** argv) {
    use_fast_threads(argv);
    llama_spellings(argc, argv);
    CLI::App app{ "dior.cpp: training-free conditional image embeddings (DIOR) on llama.cpp" };
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("dior ") + DIOR_VERSION + ", " + dior::engine_version());

    int exit_code = dior::cli::exit_ok;
    dior::cli::register_embed(app, exit_code);
    dior::cli::register_bench(app, exit_code);
    dior::cli::register_export(app, exit_code);
    dior::cli::register_import(app, exit_code);
    dior::cli::register_status(app, exit_code);
    dior::cli::register_eval(app, exit_code);
    dior::cli::register_bench_eval(app, exit_code);
    dior::cli::register_bench_clip(app, exit_code);
    dior::cli::register_search(app, exit_code);
    dior::cli::register_bench_search(app, exit_code);
    dior::cli::register_report(app, exit_code);
    dior::cli::register_serve(app, exit_code);
    dior::cli::register_datasets(app, exit_code);
    dior::cli::register_merge(app, exit_code);
    dior::cli::register_embed_text(app, exit_code);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e) == 0 ? 0 : dior::cli::exit_fatal;
    } catch (const dior::error & e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return dior::cli::exit_fatal;
    } catch (const std::bad_alloc &) {
        std::fprintf(stderr, "error: out of memory\n");
        return dior::cli::exit_fatal;
    } catch (const std::exception & e) {  // filesystem, JSON, faiss...: one line, never an abort
        std::fprintf(stderr, "error: %s\n", e.what());
        return dior::cli::exit_fatal;
    }
    return exit_code;
}
