// dior bench: where the time of one image goes, and what prefix reuse saves for K conditions.
// Prints numbers; asserts nothing.
#include "commands.h"

#include <algorithm>
#include <chrono>
#include <memory>

namespace dior::cli {
namespace {

struct bench_options {
    model_options model;
    std::string   image_path;
    int           image_size     = 448;  // side of the generated image when no --image is given
    int           image_max_size = 700;
    int           k              = 5;
    int           repeat         = 1;
    int           generate       = 0;  // > 0: also time greedy generation of this many tokens
};

image generated_image(int side) {
    image img;
    img.source = "generated";
    img.width = img.height = side;
    img.rgb.resize((size_t)side * side * 3);
    for (int y = 0; y < side; ++y) {
        for (int x = 0; x < side; ++x) {
            uint8_t * p = &img.rgb[((size_t)y * side + x) * 3];
            p[0]        = (uint8_t)(x * 255 / side);
            p[1]        = (uint8_t)(y * 255 / side);
            p[2]        = (uint8_t)(((x / 32) + (y / 32)) % 2 * 200);
        }
    }
    return img;
}

int run_bench(bench_options o) {  // a copy: -hf fills in the model files
    o.model.fetch();
    auto        m   = model::load(o.model.resolved());
    const image img = o.image_path.empty() ? generated_image(o.image_size) : load_image(o.image_path, o.image_max_size);

    static const char *                     names[] = { "car color",    "car model",    "background color",
                                                        "movie genre",  "bird species", "clothing category",
                                                        "texture type", "fabric type",  "fit type",
                                                        "country" };
    std::vector<std::optional<std::string>> conds;
    for (int i = 0; i < o.k; ++i) {
        conds.emplace_back(std::string(names[i % 10]) + (i >= 10 ? " " + std::to_string(i / 10) : ""));
    }
    embed_params ep;
    m->embed(img, { conds[0] }, ep);  // warm-up: graph allocation, first-touch of weights

    double              encode = 0, prefix = 0, with_reuse = 0, without_reuse = 0;
    std::vector<double> suffix;
    for (int r = 0; r < o.repeat; ++r) {
        ep.reuse_prefix = true;
        m->embed(img, conds, ep);
        const timings t = m->last_timings();
        encode += t.encode_ms;
        prefix += t.prefix_ms;
        with_reuse += t.total_ms;
        suffix.insert(suffix.end(), t.suffix_ms.begin(), t.suffix_ms.end());

        ep.reuse_prefix = false;
        m->embed(img, conds, ep);
        without_reuse += m->last_timings().total_ms;
    }
    const double n           = o.repeat;
    double       mean_suffix = 0;
    for (double s : suffix) {
        mean_suffix += s;
    }
    mean_suffix /= (double)suffix.size();
    const auto tokens = m->prompt_tokens(img, instruction(ep.prompt, conds[0]));
    const long n_img  = std::count(tokens.begin(), tokens.end(), -1);

    std::printf("model             %s (width %d, %d layers), %d threads\n", m->name().c_str(), m->n_embd(),
                m->n_layer(), o.model.params.n_threads);
    std::printf("image             %dx%d -> %ld image tokens, %zu prompt tokens\n", img.width, img.height, n_img,
                tokens.size());
    std::printf("image encode      %10.1f ms\n", encode / n);
    std::printf("prefix            %10.1f ms\n", prefix / n);
    std::printf("suffix/condition  %10.1f ms (min %.1f, max %.1f)\n", mean_suffix,
                *std::min_element(suffix.begin(), suffix.end()), *std::max_element(suffix.begin(), suffix.end()));
    std::printf("K=%-2d with reuse   %10.1f ms\n", o.k, with_reuse / n);
    std::printf("K=%-2d without      %10.1f ms\n", o.k, without_reuse / n);
    std::printf("reuse speed-up    %10.2fx\n", without_reuse / with_reuse);
    if (m->image_batch() > 1) {  // the same image under other names, evaluated together
        ep.reuse_prefix = true;
        const std::vector<image> imgs((size_t)m->image_batch(), img);
        m->embed_many(imgs, conds, ep);  // warm-up: the larger graphs
        double enc = 0, pre = 0, suf = 0, total = 0;
        for (int r = 0; r < o.repeat; ++r) {
            m->embed_many(imgs, conds, ep);
            const timings & t = m->last_timings();
            enc += t.encode_ms;
            pre += t.prefix_ms;
            for (double x : t.suffix_ms) {
                suf += x;
            }
            total += t.total_ms;
        }
        const double per = n * (double)imgs.size();
        std::printf("image batch       %10d images together\n", m->last_timings().most_images);
        std::printf("batched encode    %10.1f ms per image\n", enc / per);
        std::printf("batched prefix    %10.1f ms per image\n", pre / per);
        std::printf("batched suffix    %10.1f ms per image and condition\n", suf / per / (double)o.k);
        std::printf("K=%-2d batched      %10.1f ms per image\n", o.k, total / per);
    }
    if (o.generate > 0) {  // greedy generation after each condition's prompt, prefix reused
        ep.reuse_prefix              = true;
        ep.generate                  = true;
        ep.generation.max_new_tokens = o.generate;
        double gen_ms = 0, total = 0;
        int    n_tok = 0;
        for (int r = 0; r < o.repeat; ++r) {
            m->embed(img, conds, ep);
            gen_ms += m->last_timings().generate_ms;
            n_tok += m->last_timings().n_generated;
            total += m->last_timings().total_ms;
        }
        std::printf("generation        %10.1f ms for %d tokens (K=%d, at most %d each): %.2f tokens/s\n", gen_ms / n,
                    (int)(n_tok / n), o.k, o.generate, n_tok / (gen_ms / 1000.0));
        std::printf("K=%-2d generative  %10.1f ms (with reuse, prompts + generation)\n", o.k, total / n);
    }
    return exit_ok;
}

}  // namespace

void register_bench(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<bench_options>();
    auto * cmd = app.add_subcommand("bench", "time image encode, prefix, per-condition suffix, and prefix reuse");
    o->model.add(*cmd);
    cmd->add_option("--image", o->image_path, "image to embed (default: a generated one)");
    cmd->add_option("--image-size", o->image_size, "side of the generated image");
    cmd->add_option("--image-max-size,--image_max_size", o->image_max_size, "downscale --image to at most this");
    cmd->add_option("-K,--conditions", o->k, "number of conditions")->check(CLI::PositiveNumber);
    cmd->add_option("--repeat", o->repeat, "repetitions to average")->check(CLI::PositiveNumber);
    cmd->add_option("--generate", o->generate, "also time greedy generation of up to N tokens per condition");
    cmd->callback([o, &exit_code] { exit_code = run_bench(*o); });
}

}  // namespace dior::cli
