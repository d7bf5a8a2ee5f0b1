// dior bench-clip: images per second of a CLIP model's image tower, texts per second of its text
// tower, and the time of an InDiReCT fit. Prints numbers; asserts nothing.
#include "commands.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <random>

namespace dior::cli {
namespace {

struct bench_clip_options {
    std::string path;
    int         images = 5, texts = 100, components = 128, threads = 0;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench_clip(const bench_clip_options & o) {
    auto               m = clip_model::load({ o.path, o.threads });
    const int          s = m->image_size();
    std::mt19937       rng(1);
    std::vector<float> px((size_t)3 * s * s);
    for (auto & v : px) {
        v = (float)((int)(rng() % 4001) - 2000) / 1000.0f;
    }
    m->image_features_from_pixels(px);  // warm-up (allocates the graph)
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.images; ++i) {
        m->image_features_from_pixels(px);
    }
    const double img_s = seconds_since(t0) / o.images;
    std::printf("%s: image tower %dx%d: %.3f s per image, %.2f images/s\n", m->name().c_str(), s, s, img_s,
                1.0 / img_s);

    std::vector<std::string> texts;
    for (int i = 0; i < o.texts; ++i) {
        texts.push_back("a photo of a " + std::to_string(i) + " colored car in front of a wall");
    }
    t0               = std::chrono::steady_clock::now();
    const matrix x   = indirect_text_matrix(*m, texts);
    const double txt = seconds_since(t0);
    std::printf("text tower: %d texts in %.2f s, %.1f texts/s\n", o.texts, txt, o.texts / txt);

    dimredrecon_params p;
    p.components     = o.components;
    t0               = std::chrono::steady_clock::now();
    const auto   fit = fit_dimredrecon(x, p);
    const double f   = seconds_since(t0);
    std::printf(
        "InDiReCT fit: %d texts x %zu, %d components: %zu iterations in %.2f s (%.2f ms each), best loss %.6f\n",
        o.texts, x.cols, o.components, fit.loss.size(), f, 1000 * f / (double)fit.loss.size(), fit.best_loss);
    return exit_ok;
}

}  // namespace

void register_bench_clip(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<bench_clip_options>();
    auto * cmd = app.add_subcommand("bench-clip", "time a CLIP model's towers and an InDiReCT fit");
    cmd->add_option("--clip-model", o->path, "CLIP GGUF (tools/convert-clip)")->required();
    cmd->add_option("--images", o->images, "images to time (after one warm-up)");
    cmd->add_option("--texts", o->texts, "texts to encode and fit InDiReCT on");
    cmd->add_option("--components", o->components, "InDiReCT components");
    cmd->add_option("-t,--threads", o->threads, "CPU threads (0: all)");
    cmd->callback([o, &exit_code] { exit_code = run_bench_clip(*o); });
}

}  // namespace dior::cli
