// OpenBLAS chooses its kernels once, when the library loads, from the CPU's model number. A CPU
// newer than the library (Debian 12's OpenBLAS 0.3.21 on Sapphire or Emerald Rapids, say) gets
// the generic "Prescott" kernels, 4-5x slower than the AVX-512 ones the CPU can run (measured
// here: 52 against 262 GFLOP/s for one 1280x1024x1280 SGEMM on 2 threads). The caller can then
// start again with OPENBLAS_CORETYPE set, which OpenBLAS reads at load time.
//
// Its threads also spin for about 2^28 cycles after each product before they sleep. ggml runs its
// own threads between the products it hands to OpenBLAS (norms, attention, element-wise ops), and
// the spinning threads take their cores: OPENBLAS_THREAD_TIMEOUT=4 (16 cycles) made the 3B-shaped
// encoder 6.60 -> 6.15 s and the prompt 8.81 -> 8.37 s here (2 threads). A thread then sleeps and
// is woken for the next product, microseconds against the milliseconds of a product.
#include "dior.h"

#include <cblas.h>
#include <cstdlib>
#include <cstring>

namespace dior {

namespace {

const char * better_coretype() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char * core = openblas_get_corename();
    if (!core) {
        return nullptr;
    }
    // The kernels of CPUs older than Haswell: what a dynamic build falls back to for a model it does
    // not know. Any other choice was the library's own, and is kept.
    static const char * const generic[] = { "Prescott",    "Core2", "Penryn",  "Dunnington", "Nehalem",
                                            "Sandybridge", "Atom",  "Unknown", "unknown" };
    bool                      fallback  = false;
    for (const char * g : generic) {
        fallback |= strcasecmp(core, g) == 0;
    }
    if (!fallback) {
        return nullptr;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
        return "SkylakeX";
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return "Haswell";
    }
#endif
    return nullptr;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> openblas_environment() {
    std::vector<std::pair<std::string, std::string>> env;
    if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
        if (const char * core = better_coretype()) {
            env.emplace_back("OPENBLAS_CORETYPE", core);
        }
    }
    // Only OpenBLAS's own thread server spins this way (the OpenMP build follows OMP_WAIT_POLICY).
    if (std::getenv("OPENBLAS_THREAD_TIMEOUT") == nullptr && openblas_get_parallel() == 1) {
        env.emplace_back("OPENBLAS_THREAD_TIMEOUT", "4");
    }
    return env;
}

}  // namespace dior
