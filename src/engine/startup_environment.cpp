// Settings that libraries read once, when they load, so that dior sets them and starts again.
//
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
//
// ggml's CPU threads (OpenMP, libgomp) do the same the other way round: between two parts of a graph
// they wait for the next one spinning, 300,000 rounds by default (libgomp's GOMP_SPINCOUNT; about
// 20 ms with this CPU's slow PAUSE), on the cores that OpenBLAS computes the next product on. ggml
// hands a product to OpenBLAS about 450 times in one Qwen2.5-VL image encode. GOMP_SPINCOUNT=3000
// (a fraction of a millisecond) made the 3B-shaped encoder 6.06 -> 5.3-5.4 s and the prompt 8.4 ->
// 7.5-7.9 s here (2 threads; 1,000 to 10,000 measured alike, 0 slower in short passes).
#include "dior.h"

#include <cblas.h>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

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

std::vector<std::pair<std::string, std::string>> startup_environment() {
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
    // libgomp, where it is loaded (ggml's CPU backend and faiss use it); a wait policy the user chose
    // is theirs.
    void *     gomp_handle = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
    const bool gomp        = gomp_handle != nullptr;
    if (gomp_handle) {
        dlclose(gomp_handle);  // only the reference RTLD_NOLOAD took
    }
    if (gomp && std::getenv("GOMP_SPINCOUNT") == nullptr && std::getenv("OMP_WAIT_POLICY") == nullptr) {
        env.emplace_back("GOMP_SPINCOUNT", "3000");
    }
    return env;
}

}  // namespace dior
