// OpenBLAS chooses its kernels once, when the library loads, from the CPU's model number. A CPU
// newer than the library (Debian 12's OpenBLAS 0.3.21 on Sapphire or Emerald Rapids, say) gets
// the generic "Prescott" kernels, 4-5x slower than the AVX-512 ones the CPU can run (measured
// here: 52 against 262 GFLOP/s for one 1280x1024x1280 SGEMM on 2 threads). The caller can then
// start again with OPENBLAS_CORETYPE set, which OpenBLAS reads at load time.
#include "dior.h"

#include <cblas.h>
#include <cstring>

namespace dior {

const char * openblas_better_coretype() {
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

}  // namespace dior
