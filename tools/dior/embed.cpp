// dior embed: images x conditions -> one float32 .npy matrix per (condition, layer) + manifest.
#include "commands.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {
namespace {

struct embed_options {
    model_options            model;
    std::vector<std::string> inputs;
    std::string              list_file;
    std::vector<std::string> conditions;
    std::string              conditions_file;
    bool                     unconditional = false;
    std::string              prompt_type   = "describe";
    std::vector<std::string> layers;
    int                      token          = -1;
    int                      image_max_size = 700;
    std::string              positions_name = "sequential";
    bool                     no_reuse       = false;
    bool                     use_cache      = false;
    std::string              out_dir        = "dior-out";
};

struct failure {
    std::string path;
    std::string reason;
};

std::string slug(const std::optional<std::string> & condition) {
    if (!condition) {
        return "None";
    }
    std::string s;
    for (char c : *condition) {
        const bool keep = std::isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
        s.push_back(c == ' ' ? '_' : (keep ? c : '-'));
    }
    return s.empty() ? "empty" : s;
}

class progress {
  public:
    explicit progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO) != 0), t0_(clock::now()) {}

    void update(size_t done, const std::string & current) {
        const double elapsed = seconds();
        const double rate    = done > 0 ? done / elapsed : 0.0;
        const double eta     = rate > 0 ? (total_ - done) / rate : 0.0;
        if (tty_) {
            std::fprintf(stderr, "\r\033[K[%zu/%zu] %.2f img/s, ETA %.0f s  %s", done, total_, rate, eta,
                         fs::path(current).filename().string().c_str());
            if (done == total_) {
                std::fputc('\n', stderr);
            }
        } else if (done == total_ || elapsed - last_ >= 5.0) {
            std::fprintf(stderr, "progress: %zu/%zu images, %.2f img/s, ETA %.0f s\n", done, total_, rate, eta);
            last_ = elapsed;
        }
    }

    // An error line must not be glued to a progress bar.
    void message(const std::string & line) { std::fprintf(stderr, "%s%s\n", tty_ ? "\r\033[K" : "", line.c_str()); }

    double seconds() const { return std::chrono::duration<double>(clock::now() - t0_).count(); }

  private:
    using clock = std::chrono::steady_clock;
    size_t            total_;
    bool              tty_;
    clock::time_point t0_;
    double            last_ = 0;
};

int run_embed(const embed_options & o) {
    const auto conditions = collect_conditions(o.conditions, o.conditions_file, o.unconditional);
    const auto images     = collect_images(o.inputs, o.list_file);
    if (images.empty()) {
        throw error("no images given: pass image files, folders or --list FILE");
    }
    auto ptype = parse_prompt_type(o.prompt_type);
    if (!ptype) {
        // As the reference does: an unknown prompt type falls back to describe.
        std::fprintf(stderr, "warning: unknown prompt type '%s'; using 'describe'\n", o.prompt_type.c_str());
        ptype = prompt_type::describe;
    }
    positions pos_mode;
    if (o.positions_name == "sequential") {
        pos_mode = positions::sequential;
    } else if (o.positions_name == "native") {
        pos_mode = positions::native;
    } else {
        throw error("--positions " + o.positions_name + ": use sequential or native");
    }

    // The model first: a missing or broken model fails before anything is written.
    auto m = model::load(o.model.params);

    embed_params ep;
    ep.prompt                       = *ptype;
    ep.layers                       = parse_layers(o.layers, *m);
    ep.token                        = o.token;
    ep.position                     = pos_mode;
    ep.reuse_prefix                 = !o.no_reuse;
    const std::vector<int> resolved = m->resolve_layers(ep.layers);

    // rows[c][l] holds the vectors of condition c at layer l, one row per embedded image.
    std::vector<std::vector<std::vector<float>>> rows(conditions.size(),
                                                      std::vector<std::vector<float>>(resolved.size()));
    json                                         embedded = json::array();
    std::vector<failure>                         failures;
    progress                                     bar(images.size());

    for (size_t i = 0; i < images.size(); ++i) {
        const std::string & path = images[i];
        try {
            const image img = load_image(path, o.image_max_size);
            const auto  res = m->embed(img, conditions, ep);
            for (size_t c = 0; c < res.size(); ++c) {
                for (size_t l = 0; l < resolved.size(); ++l) {
                    rows[c][l].insert(rows[c][l].end(), res[c].vectors[l].begin(), res[c].vectors[l].end());
                }
            }
            embedded.push_back({ { "path", path },
                                 { "width", img.width },
                                 { "height", img.height },
                                 { "n_tokens", res.front().n_tokens } });
        } catch (const error & e) {
            // The message names the file; keep going with the other images.
            const std::string msg = e.what();
            failures.push_back({ path, msg.rfind(path, 0) == 0 ? msg : path + ": " + msg });
            bar.message("error: " + failures.back().reason);
        }
        bar.update(i + 1, path);
    }

    if (embedded.empty()) {
        std::fprintf(stderr, "error: none of the %zu images could be embedded; nothing written\n", images.size());
        return exit_fatal;
    }

    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) {
        throw error("cannot create output folder " + o.out_dir + ": " + ec.message());
    }
    json                     files = json::array(), conds = json::array();
    std::vector<std::string> used;
    for (size_t c = 0; c < conditions.size(); ++c) {
        std::string base = slug(conditions[c]);
        if (std::find(used.begin(), used.end(), base) != used.end()) {
            base += "-" + std::to_string(c);
        }
        used.push_back(base);
        const std::string instr = instruction(*ptype, conditions[c]);
        conds.push_back({ { "condition", conditions[c] ? json(*conditions[c]) : json(nullptr) },
                          { "instruction", instr },
                          { "prompt", m->render_prompt(instr) } });
        for (size_t l = 0; l < resolved.size(); ++l) {
            const std::string name = base + ".layer" + std::to_string(resolved[l]) + ".npy";
            matrix            mat;
            mat.cols = (size_t)m->n_embd();
            mat.rows = embedded.size();
            mat.data = std::move(rows[c][l]);
            write_npy((fs::path(o.out_dir) / name).string(), mat);
            files.push_back({ { "condition_index", c },
                              { "layer", resolved[l] },
                              { "file", name },
                              { "shape", { mat.rows, mat.cols } } });
        }
    }
    json failed = json::array();
    for (const auto & f : failures) {
        failed.push_back({ { "path", f.path }, { "error", f.reason } });
    }
    const json manifest = {
        { "tool", std::string("dior.cpp ") + DIOR_VERSION },
        { "engine", engine_version() },
        { "model",
          { { "path", o.model.params.model_path },
            { "mmproj", o.model.params.mmproj_path },
            { "name", m->name() },
            { "n_embd", m->n_embd() },
            { "n_layer", m->n_layer() } } },
        { "settings",
          { { "prompt_type", prompt_type_name(*ptype) },
            { "layers", resolved },
            { "token", o.token },
            { "embedding_source", "input_last" },
            { "image_max_size", o.image_max_size },
            { "positions", o.positions_name },
            { "prefix_reuse", ep.reuse_prefix },
            { "flash_attn", o.model.params.flash_attn },
            { "kv_type", o.model.params.kv_f16 ? "f16" : "f32" } } },
        { "conditions", conds },
        { "images", embedded },
        { "failed", failed },
        { "files", files },
    };
    const std::string manifest_path = (fs::path(o.out_dir) / "manifest.json").string();
    {
        std::ofstream f(manifest_path + ".tmp");
        f << manifest.dump(2) << "\n";
        if (!f) {
            throw error("cannot write " + manifest_path);
        }
    }
    fs::rename(manifest_path + ".tmp", manifest_path);

    const double secs = bar.seconds();
    std::fprintf(stderr,
                 "embedded %zu of %zu images x %zu conditions x %zu layers (width %d) in %.1f s (%.2f img/s); "
                 "%zu failed%s\nwrote %s\n",
                 embedded.size(), images.size(), conditions.size(), resolved.size(), m->n_embd(), secs,
                 embedded.size() / secs, failures.size(), failures.empty() ? "" : " (listed in manifest.json)",
                 o.out_dir.c_str());
    return failures.empty() ? exit_ok : exit_partial;
}

}  // namespace

void register_embed(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<embed_options>();
    auto * cmd = app.add_subcommand("embed", "embed images under one or more conditions");
    o->model.add(*cmd);
    cmd->add_option("inputs", o->inputs, "image files and folders");
    cmd->add_option("--list", o->list_file, "a text file with one image path per line");
    cmd->add_option("-c,--condition", o->conditions, "a condition, e.g. \"car color\" (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--conditions-file", o->conditions_file, "a text file with one condition per line");
    cmd->add_flag("--unconditional", o->unconditional, "also embed with the prompt that has no condition");
    cmd->add_option("--prompt-type,--prompt_type", o->prompt_type,
                    "describe, express, summarize, capture, convey, depict or describe_unconstraint");
    cmd->add_option("--layer,--num_layer", o->layers,
                    "hidden-state index (HF hidden_states; -1 = final; repeatable, comma list, or 'all')")
        ->allow_extra_args(false);
    cmd->add_option("--token,--num_token", o->token, "token index (-1 = last prompt token)");
    cmd->add_option("--image-max-size,--image_max_size", o->image_max_size,
                    "downscale so the longer side is at most this");
    cmd->add_option("--positions", o->positions_name, "sequential (the reference's default) or native (M-RoPE)");
    cmd->add_flag("--no-prefix-reuse", o->no_reuse, "recompute the whole prompt for every condition");
    cmd->add_flag("--use_cache", o->use_cache, "reuse the image prefix across conditions (the default)");
    cmd->add_option("-o,--out", o->out_dir, "output folder for .npy files and manifest.json");
    cmd->callback([o, &exit_code] { exit_code = run_embed(*o); });
}

}  // namespace dior::cli
