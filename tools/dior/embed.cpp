// dior embed: images x conditions x layers -> the store (and optionally .npy files). The run is
// the library's (run_embed, src/pipeline/run.cpp); this file turns the command line into its
// options, shows its progress, and turns its result into a summary and an exit status.
#include "commands.h"
#include "progress.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

namespace dior::cli {
namespace {

std::atomic<int>  g_signal{ 0 };  // the signal that asked the run to stop, or 0
std::atomic<bool> g_cancel{ false };

// SIGINT (Ctrl-C), SIGTERM (containers, systemd, kill) and SIGHUP (a closed terminal) all finish
// the current image, commit it and stop. A second signal stops at once (the store stays valid).
constexpr int k_stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

extern "C" void on_stop_signal(int sig) {
    g_signal = sig;
    g_cancel = true;
    std::signal(sig, SIG_DFL);
}

// While the images are embedded, those signals stop the run; before (loading, downloading) and
// after, they act as usual.
struct stop_signals {
    stop_signals() {
        g_signal = 0;
        g_cancel = false;
        for (int sig : k_stop_signals) {
            std::signal(sig, on_stop_signal);
        }
    }

    ~stop_signals() {
        for (int sig : k_stop_signals) {
            std::signal(sig, SIG_DFL);
        }
    }
};

// The command line's options: the run's, and what only the command line has.
struct embed_options {
    run_options              run;
    model_options            model;
    std::vector<std::string> conditions;
    std::string              conditions_file;
    bool                     unconditional = false;
    bool                     no_reuse      = false;
    bool                     use_cache     = false;  // the reference's flag; prefix reuse is the default
    std::string              npy_dir;
};

int run_embed_command(embed_options o) {  // a copy: -hf fills in the model files
    run_options & ro = o.run;
    // A dataset brings its aspects unless conditions are given; ad-hoc images default to the
    // unconditional prompt.
    if (ro.dataset.empty() || !o.conditions.empty() || !o.conditions_file.empty()) {
        ro.conditions = collect_conditions(o.conditions, o.conditions_file, o.unconditional);
    }
    ro.reuse_prefix = !o.no_reuse;
    ro.model        = o.model.params;

    std::unique_ptr<progress> bar;
    run_events                ev;
    ev.fetch_model = [&o](model_params & m) {
        o.model.fetch();
        m = o.model.resolved();
    };
    std::optional<stop_signals> signals;  // from the first image on: loading and downloads stop as usual
    ev.start = [&bar, &signals](size_t total) {
        signals.emplace();
        bar = std::make_unique<progress>(total);
    };
    ev.progress = [&bar](size_t done, size_t, size_t work, const std::string & path) { bar->update(done, work, path); };
    ev.message  = [&bar](const std::string & line) {
        if (bar) {
            bar->message(line);
        } else {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
    };
    ev.cancel          = &g_cancel;
    const run_result r = run_embed(ro, ev);
    signals.reset();
    if (r.no_images) {
        std::fprintf(stderr, "shard %s of %zu images holds none of them: nothing to embed\n", ro.shard.c_str(),
                     r.listed);
        return exit_ok;
    }
    const bool   dior_vectors = ro.method == "dior" && parse_embed_source(ro.source) == embed_source::input_last;
    const size_t n_layers     = r.settings.size() / std::max<size_t>(1, r.n_conditions);
    std::fprintf(
        stderr,
        "%zu images: %zu embedded, %zu skipped (already stored), %zu failed%s; %s (width %d); %.1f s, "
        "%.2f img/s\nstore: %s\n",
        r.images, r.embedded, r.skipped, r.failed,
        r.failed ? (" (reasons: dior status --db " + ro.store + ")").c_str() : "",
        dior_vectors
            ? (std::to_string(r.n_conditions) + " conditions x " + std::to_string(n_layers) + " layers").c_str()
            : (std::to_string(r.settings.size()) + " settings (" + ro.method + ")").c_str(),
        r.width, r.seconds, r.seconds > 0 ? (double)r.embedded / r.seconds : 0.0, ro.store.c_str());
    if (r.cancelled) {
        const int sig = g_signal.load();
        std::fprintf(stderr,
                     "interrupted (%s) after %zu of %zu images; everything embedded so far is stored. Run the same "
                     "command again to resume.\n",
                     strsignal(sig), r.embedded + r.skipped + r.failed, r.images);
        return 128 + sig;  // 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    }
    if (!o.npy_dir.empty()) {
        export_npy(*store::open(ro.store), r.setting_ids, o.npy_dir);
        std::fprintf(stderr, "npy: %s\n", o.npy_dir.c_str());
    }
    if (r.embedded + r.skipped == 0) {
        std::fprintf(stderr, "error: none of the %zu images could be embedded\n", r.images);
        return exit_fatal;
    }
    return r.failed ? exit_partial : exit_ok;
}

}  // namespace

void register_embed(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<embed_options>();
    auto * cmd = app.add_subcommand("embed", "embed images under one or more conditions into a store");
    o->model.add(*cmd);
    cmd->add_option("inputs", o->run.inputs, "image files and folders");
    cmd->add_option("--list", o->run.list_file, "a text file with one image path per line");
    cmd->add_option("--dataset", o->run.dataset,
                    "a dataset of the reference (synthetic_cars, cars196, cub200, "
                    "deepfashion, movie_posters): its images and all its aspects");
    cmd->add_option("--datasets-dir", o->run.datasets_dir, "folder holding one flat folder per dataset");
    cmd->add_option("--shard", o->run.shard,
                    "I/N: only the images at positions I, I+N, ... of the listing (I from 0); N runs cover all, "
                    "dior merge joins their stores");
    cmd->add_option("--name", o->run.name, "name of an ad-hoc image set (default: the folder's name)");
    cmd->add_option("--model-id", o->run.model_id,
                    "model name for settings and exports, e.g. Qwen/Qwen2.5-VL-7B-Instruct (default: file name)");
    cmd->add_option("-c,--condition", o->conditions, "a condition, e.g. \"car color\" (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--conditions-file", o->conditions_file, "a text file with one condition per line");
    cmd->add_flag("--unconditional", o->unconditional, "also embed with the prompt that has no condition");
    cmd->add_option("--prompt-type,--prompt_type", o->run.prompt_type,
                    "describe, express, summarize, capture, convey, depict or describe_unconstraint");
    cmd->add_option("--layer,--num_layer", o->run.layers,
                    "hidden-state index (HF hidden_states; -1 = final; repeatable, comma list, or 'all')")
        ->allow_extra_args(false);
    cmd->add_option("--token,--num_token", o->run.token,
                    "token index (-1 = last prompt token; negative counts from the end)");
    cmd->add_option("--image-max-size,--image_max_size", o->run.image_max_size,
                    "downscale so the longer side is at most this");
    cmd->add_option("--positions", o->run.positions,
                    "sequential (the reference's DIOR default) or native (M-RoPE; the default of --method "
                    "generative, as the reference's generate() runs)");
    cmd->add_flag("--no-prefix-reuse", o->no_reuse, "recompute the whole prompt for every condition");
    cmd->add_flag("--use_cache", o->use_cache, "reuse the image prefix across conditions (the default)");
    cmd->add_flag("--parse-special", o->run.parse_special,
                  "tokenize special-token text in a condition (e.g. <|im_end|>) as control tokens, as the "
                  "reference's processor does (default: a condition is plain text)");
    cmd->add_option("-o,--out", o->run.store, "the store (SQLite file; created if missing, appended to otherwise)");
    cmd->add_option("--npy", o->npy_dir, "also write this run's settings as .npy files + manifest.json here");
    cmd->add_option("--method", o->run.method,
                    "dior (default), clip (the CLIP baseline), indirect (InDiReCT: CLIP + a projection fitted "
                    "on each aspect's texts) or generative (the LVLM's answer embedded by --text-encoder)");
    cmd->add_option("--clip-model", o->run.clip_model, "CLIP GGUF for --method clip / indirect (tools/convert-clip)");
    cmd->add_option("--indirect-texts", o->run.indirect_texts,
                    "InDiReCT condition texts, as data/reference/indirect_texts.json (default: the reference's)");
    cmd->add_option("--components", o->run.components, "InDiReCT: rows of the fitted projection (default 128)");
    cmd->add_option("--indirect-seed", o->run.indirect_seed, "InDiReCT: seed of the projection's initialisation");
    cmd->add_option("--source,--embedding_source", o->run.source,
                    "DIOR's vector: input_last (the last prompt token, default), first_output (the first "
                    "generated token) or mean_output (the mean over the generated tokens)");
    cmd->add_option("--max-new-tokens,--gen_max_new_tokens", o->run.max_new_tokens,
                    "generation: at most this many tokens (default 16); stops at the end of the turn");
    cmd->add_flag("--sample,--gen_do_sample", o->run.do_sample,
                  "generation: sample instead of greedy decoding (transformers' do_sample)");
    cmd->add_option("--temperature,--gen_temperature", o->run.temperature,
                    "with --sample: the temperature (default 1, as transformers)");
    cmd->add_option("--top-k", o->run.top_k,
                    "with --sample: keep the k most likely tokens (default 50, as transformers)");
    cmd->add_option("--top-p", o->run.top_p, "with --sample: nucleus sampling mass (default 1: off)");
    cmd->add_option("--seed", o->run.seed, "with --sample: the seed (each image and condition starts from it)");
    cmd->add_option("--repeat-penalty,--repetition_penalty", o->run.repeat_penalty,
                    "generation: transformers' repetition_penalty over prompt and answer (default 1 = off; use "
                    "the model's generation_config.json value to reproduce transformers' generate())");
    cmd->add_option("--text-encoder", o->run.text_encoder,
                    "generative: the sentence encoder GGUF (tools/convert-sentence), e.g. sentence-t5-base");
    cmd->add_option("--text-encoder-id", o->run.text_encoder_id,
                    "generative: its id in settings and folder names (default: the id recorded at conversion)");
    cmd->add_option("--embed-text", o->run.embed_text,
                    "generative: whole (prompt + answer decoded, the reference's behaviour; default) or answer");
    cmd->add_option("--max-file-size", o->run.limits.max_file_bytes,
                    "refuse image files larger than this many bytes (default 1 GiB; 0: no limit)");
    cmd->add_option("--max-image-pixels", o->run.limits.max_pixels,
                    "refuse images with more pixels than this, from their header (default 178956970, Pillow's "
                    "decompression-bomb limit; 0: no limit)");
    cmd->callback([o, &exit_code] { exit_code = run_embed_command(*o); });
}

}  // namespace dior::cli
