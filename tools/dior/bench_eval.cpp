// dior bench-eval: evaluation wall time at dataset scale next to one N x N x D matrix product.
// Prints numbers; asserts nothing.
#include "commands.h"

#include <cblas.h>
#include <chrono>
#include <memory>
#include <random>

namespace dior::cli {
namespace {

struct bench_eval_options {
    int n = 8052, d = 3584, labels = 20;
    int seed = 1;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench_eval(const bench_eval_options & o) {
    std::mt19937                    rng(o.seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::vector<float>              centers((size_t)o.labels * o.d);
    for (auto & v : centers) {
        v = g(rng);
    }
    matrix           x;
    std::vector<int> labels(o.n);
    x.rows = (size_t)o.n;
    x.cols = (size_t)o.d;
    x.data.resize(x.rows * x.cols);
    for (int i = 0; i < o.n; ++i) {
        labels[i] = (int)(rng() % (unsigned)o.labels);
        for (int j = 0; j < o.d; ++j) {
            x.data[(size_t)i * o.d + j] = 0.3f * centers[(size_t)labels[i] * o.d + j] + g(rng);
        }
    }
    std::printf("N = %d vectors, D = %d, %d labels\n", o.n, o.d, o.labels);

    std::vector<float> c((size_t)o.n * o.n);
    auto               t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, o.n, o.n, o.d, 1.0f, x.data.data(), o.d, x.data.data(), o.d,
                0.0f, c.data(), o.n);
    const double gemm = seconds_since(t0);
    c.clear();
    c.shrink_to_fit();
    std::printf("one N x N x D SGEMM (OpenBLAS)      %8.2f s  (%.1f GFLOP/s)\n", gemm,
                2.0 * o.n * (double)o.n * o.d / gemm / 1e9);

    eval_params ep;
    ep.clustering          = false;
    t0                     = std::chrono::steady_clock::now();
    const auto   r         = evaluate(x, labels, ep);
    const double retrieval = seconds_since(t0);
    std::printf("mAP@R + P@1 (exact kNN)             %8.2f s  (%.2fx the SGEMM)  map@r %.4f p@1 %.4f\n", retrieval,
                retrieval / gemm, r.mean_average_precision_at_r, r.precision_at_1);

    ep.clustering     = true;
    t0                = std::chrono::steady_clock::now();
    const auto   a    = evaluate(x, labels, ep);
    const double full = seconds_since(t0);
    std::printf("all four metrics (+ k-means, NMI, AMI) %6.2f s  (%.2fx the SGEMM)  NMI %.4f AMI %.4f\n", full,
                full / gemm, a.NMI, a.AMI);
    return exit_ok;
}

}  // namespace

void register_bench_eval(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<bench_eval_options>();
    auto * cmd = app.add_subcommand("bench-eval", "time the evaluation at dataset scale next to one N x N x D SGEMM");
    cmd->add_option("-n", o->n, "vectors (default: movie posters, 8052)");
    cmd->add_option("-d", o->d, "width (default: Qwen2.5-VL-7B, 3584)");
    cmd->add_option("--labels", o->labels, "number of labels");
    cmd->callback([o, &exit_code] { exit_code = run_bench_eval(*o); });
}

}  // namespace dior::cli
