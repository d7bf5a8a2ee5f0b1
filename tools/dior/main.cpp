// dior: conditional image embeddings from the command line.
#include "commands.h"

#include <cstdlib>
#include <unistd.h>

namespace {

// OpenBLAS (evaluation, and ggml's BLAS backend for large matrix products) picks its kernels when it
// loads; if it fell back to generic ones on a CPU it does not know, start again with the right ones.
void use_fast_openblas_kernels(char ** argv) {
    if (std::getenv("OPENBLAS_CORETYPE") != nullptr) {
        return;  // set by the user, or by the start below
    }
    const char * core = dior::openblas_better_coretype();
    if (core == nullptr || setenv("OPENBLAS_CORETYPE", core, 1) != 0) {
        return;
    }
    execv("/proc/self/exe", argv);  // returns only on failure: go on with the slow kernels
    unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

int main(int argc, char ** argv) {
    use_fast_openblas_kernels(argv);
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
