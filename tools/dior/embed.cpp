// dior embed: images x conditions x layers -> the store (and optionally .npy files).
// Every image's vectors are committed in one transaction; re-running skips what is stored.
#include "commands.h"
#include "progress.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <sys/stat.h>

namespace fs = std::filesystem;

namespace dior::cli {
namespace {

int64_t mtime_ns(const struct stat & sb) {
    return (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

std::atomic<int> g_interrupted{ 0 };  // the signal that asked the run to stop, or 0

// SIGINT (Ctrl-C), SIGTERM (containers, systemd, kill) and SIGHUP (a closed terminal) all finish
// the current image, commit it and stop. A second signal stops at once (the store stays valid).
constexpr int k_stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

extern "C" void on_stop_signal(int sig) {
    g_interrupted = sig;
    std::signal(sig, SIG_DFL);
}

struct embed_options {
    model_options            model;
    std::vector<std::string> inputs;
    std::string              list_file;
    std::string              dataset;
    std::string              datasets_dir;
    std::string              shard;  // "I/N"
    std::string              name;
    std::string              model_id;
    std::vector<std::string> conditions;
    std::string              conditions_file;
    bool                     unconditional = false;
    std::string              prompt_type   = "describe";
    std::vector<std::string> layers;
    int                      token          = -1;
    int                      image_max_size = 700;
    std::string              positions_name;  // default: sequential, native for --method generative
    bool                     no_reuse      = false;
    bool                     use_cache     = false;
    bool                     parse_special = false;
    std::string              out           = "embeddings.db";
    std::string              npy_dir;
    image_limits             limits;
    std::string              method = "dior";
    std::string              clip_model;
    std::string              indirect_texts = DIOR_DATA_DIR "/reference/indirect_texts.json";
    int                      components     = 128;
    uint64_t                 indirect_seed  = 0;
    // generation (first_output, mean_output, --method generative)
    std::string source         = "input_last";
    int         max_new_tokens = 16;
    float       temperature    = -1;  // -1: not given (1 when sampling, as transformers)
    bool        do_sample      = false;
    int         top_k          = 50;
    float       top_p          = 1;
    uint32_t    seed           = 0;
    float       repeat_penalty = 1;
    std::string text_encoder;
    std::string text_encoder_id;
    std::string embed_text = "whole";
};

// --shard I/N: the images at positions I, I+N, I+2N... of the listing (I from 0), so that N runs
// with the same inputs cover every image exactly once, each class of a sorted dataset spread
// over all of them.
std::vector<std::string> shard_of(const std::vector<std::string> & images, const std::string & spec) {
    size_t i = 0, n = 0;
    char   slash = 0, extra = 0;
    if (std::sscanf(spec.c_str(), "%zu%c%zu%c", &i, &slash, &n, &extra) != 3 || slash != '/' || n == 0 || i >= n ||
        spec.find_first_not_of("0123456789/") != std::string::npos) {
        throw error("--shard " + spec + ": expected I/N with 0 <= I < N, e.g. 0/4 ... 3/4");
    }
    std::vector<std::string> out;
    for (size_t k = i; k < images.size(); k += n) {
        out.push_back(images[k]);
    }
    return out;
}

// Name of an ad-hoc run's image set: --name, else the folder's name, else "images".
std::string run_name(const embed_options & o) {
    if (!o.dataset.empty()) {
        return o.dataset;
    }
    if (!o.name.empty()) {
        return o.name;
    }
    std::error_code ec;
    if (o.inputs.size() == 1 && fs::is_directory(o.inputs[0], ec)) {
        const std::string n = fs::path(o.inputs[0]).lexically_normal().filename().string();
        if (!n.empty() && n != "." && n != "..") {
            return n;
        }
        return fs::absolute(o.inputs[0]).lexically_normal().parent_path().filename().string();
    }
    return "images";
}

// The longest prompt, for an image as large as --image-max-size allows (a square: the most pixels
// for that longer side), must fit the context; say which size would.
void check_context(model & m, const embed_params & ep, const std::vector<std::optional<std::string>> & conditions,
                   const embed_options & o) {
    if (o.image_max_size <= 0) {
        return;  // no size limit: checked per image
    }
    image probe;
    probe.source = "(probe)";
    probe.width = probe.height = o.image_max_size;
    probe.rgb.assign((size_t)o.image_max_size * o.image_max_size * 3, 128);
    size_t longest = 0;
    for (const auto & c : conditions) {
        longest = std::max(longest, m.prompt_tokens(probe, instruction(ep.prompt, c), ep.parse_special).size());
    }
    const bool   gen   = ep.generate || ep.source != embed_source::input_last;
    const size_t n_new = gen ? (size_t)ep.generation.max_new_tokens : 0;
    if ((int64_t)(longest + n_new) > o.model.params.n_ctx) {
        throw error("--ctx-size " + std::to_string(o.model.params.n_ctx) + " is too small: an image of " +
                    std::to_string(o.image_max_size) + " x " + std::to_string(o.image_max_size) +
                    " px with the longest prompt takes " + std::to_string(longest) + " tokens" +
                    (gen ? " + " + std::to_string(n_new) + " generated" : std::string()) + "; use --ctx-size " +
                    std::to_string(longest + n_new) + " or more, or a smaller --image-max-size");
    }
    if (ep.source == embed_source::input_last && o.token >= (int)longest) {
        // the shortest prompt may be shorter still; this at least catches a token no prompt reaches
        throw error("--token " + std::to_string(o.token) + " is beyond the longest prompt (" + std::to_string(longest) +
                    " tokens for the largest image)");
    }
}

int run_embed(embed_options o) {  // a copy: -hf fills in the model files
    // --- what to embed ---------------------------------------------------------------------
    std::vector<std::string>                images;
    std::vector<std::optional<std::string>> conditions;
    if (!o.dataset.empty()) {
        const dataset_info * d = find_dataset(o.dataset);
        if (!d) {
            std::string known;
            for (const auto & ds : datasets()) {
                known += " " + ds.name;
            }
            throw error("unknown dataset '" + o.dataset + "'; known:" + known);
        }
        if (o.datasets_dir.empty()) {
            throw error("--dataset needs --datasets-dir DIR (the images of " + o.dataset + " are in DIR/" + o.dataset +
                        ")");
        }
        images     = list_dataset_images((fs::path(o.datasets_dir) / o.dataset).string());
        conditions = d->aspects;
        if (!o.conditions.empty() || !o.conditions_file.empty()) {
            conditions = collect_conditions(o.conditions, o.conditions_file, o.unconditional);
        }
    } else {
        images     = collect_images(o.inputs, o.list_file);
        conditions = collect_conditions(o.conditions, o.conditions_file, o.unconditional);
    }
    if (images.empty()) {
        throw error("no images given: pass image files, folders, --list FILE or --dataset NAME --datasets-dir DIR");
    }
    if (!o.shard.empty()) {
        const size_t all = images.size();
        images           = shard_of(images, o.shard);
        if (images.empty()) {  // more shards than images: this one has nothing to do
            std::fprintf(stderr, "shard %s of %zu images holds none of them: nothing to embed\n", o.shard.c_str(), all);
            return exit_ok;
        }
    }
    // Images are known to the store by absolute path, so that a run resumes from any folder.
    for (auto & p : images) {
        p = p.empty() ? p : fs::absolute(p).lexically_normal().string();
    }
    // Arguments are checked before any work, so that a mistake writes nothing.
    if (o.out.empty()) {
        throw error("-o/--out is empty: pass the store's file name");
    }
    if (o.image_max_size < 0) {
        throw error("--image-max-size " + std::to_string(o.image_max_size) +
                    ": use a size in pixels, or 0 for no limit");
    }
    if (o.model.params.n_threads < 0) {
        throw error("-t/--threads " + std::to_string(o.model.params.n_threads) + ": use a count, or 0 for all");
    }
    if (o.model.params.n_gpu_layers < -1) {
        throw error("--gpu-layers " + std::to_string(o.model.params.n_gpu_layers) + ": use a count, or -1 for all");
    }
    if (o.model.params.n_ctx < 16 || o.model.params.n_batch < 1) {
        throw error("--ctx-size must be at least 16 and --batch-size at least 1");
    }
    if (o.limits.max_file_bytes < 0 || o.limits.max_pixels < 0) {
        throw error("--max-file-size and --max-image-pixels take a positive limit, or 0 for none");
    }
    for (const auto & l : o.layers) {
        if (l.find_first_not_of(" \t,") == std::string::npos) {
            throw error("--layer '" + l + "': give layer indices (e.g. -1, 0,12 or all)");
        }
    }
    if (o.token >= o.model.params.n_ctx || o.token < -o.model.params.n_ctx) {
        throw error("--token " + std::to_string(o.token) + " is outside any prompt that fits the context (--ctx-size " +
                    std::to_string(o.model.params.n_ctx) + ")");
    }
    auto ptype = parse_prompt_type(o.prompt_type);
    if (!ptype) {
        // As the reference does: an unknown prompt type falls back to describe.
        std::fprintf(stderr, "warning: unknown prompt type '%s'; using 'describe'\n", o.prompt_type.c_str());
        ptype = prompt_type::describe;
    }
    // The reference's generative baseline calls generate() without position ids (native M-RoPE);
    // its DIOR path passes sequential ones.
    const std::string positions_name = !o.positions_name.empty()  ? o.positions_name
                                       : o.method == "generative" ? "native"
                                                                  : "sequential";
    if (positions_name != "sequential" && positions_name != "native") {
        throw error("--positions " + positions_name + ": use sequential or native");
    }
    const auto source = parse_embed_source(o.source);
    if (!source) {
        throw error("--source " + o.source + ": use input_last, first_output or mean_output");
    }
    const bool generating = o.method == "generative" || *source != embed_source::input_last;
    if (generating && (o.max_new_tokens < 1 || o.max_new_tokens > o.model.params.n_ctx)) {
        throw error("--max-new-tokens " + std::to_string(o.max_new_tokens) + ": use 1 or more (default 16)");
    }
    // As transformers' generate(do_sample=...): a temperature alone does not sample.
    if (o.temperature != -1 && !o.do_sample) {
        std::fprintf(stderr, "warning: --temperature without --sample is ignored: generation is greedy\n");
    }
    const float temperature = !o.do_sample ? 0.0f : o.temperature == -1 ? 1.0f : o.temperature;
    if (o.do_sample && !(temperature >= 0.01f && std::isfinite(temperature))) {
        throw error("--temperature " + std::to_string(o.temperature) +
                    ": sampling needs a temperature of 0.01 or more (names keep two decimals)");
    }
    if (o.top_k < 0 || !(o.top_p > 0 && o.top_p <= 1)) {
        throw error("--top-k takes 0 (all) or more, --top-p a fraction in (0, 1]");
    }
    if (o.seed == 0xFFFFFFFFu) {
        throw error("--seed 4294967295 is llama.cpp's 'random seed'; use another value");
    }
    if (!(o.repeat_penalty > 0) || !std::isfinite(o.repeat_penalty)) {
        throw error("--repeat-penalty " + std::to_string(o.repeat_penalty) + ": use a positive factor (1: off)");
    }
    if (o.embed_text != "whole" && o.embed_text != "answer") {
        throw error("--embed-text " + o.embed_text + ": use whole (the reference's) or answer");
    }
    if (*source != embed_source::input_last && o.method != "dior") {
        throw error("--source " + o.source + " belongs to --method dior");
    }

    // --- the model first: a missing or broken model fails before anything is written ---------
    setting base;
    base.dataset        = run_name(o);
    base.engine         = engine_version();
    base.image_max_size = o.image_max_size;

    std::unique_ptr<model>            m;        // DIOR, generative
    std::unique_ptr<clip_model>       clip;     // CLIP, InDiReCT
    std::unique_ptr<sentence_encoder> encoder;  // generative
    std::unique_ptr<method>           meth;
    std::string                       weights[2];  // the files whose hashes identify the model
    // Their hashes are computed while the models load (the per-user cache answers at once after
    // the first run); a file that cannot be read fails the load first.
    // A failed start cancels them (futures wait for their task; `stop_hashing` is destroyed, and
    // so sets the flag, before them).
    // With -v, how long they took (the longest; about 0 when the cache answered).
    using hash_clock = std::chrono::steady_clock;
    std::atomic<bool>        cancel_hashing{ false };
    std::atomic<int64_t>     hashing_ns{ 0 };  // before the futures: their tasks outlive it otherwise
    std::future<std::string> hashes[3];
    const auto               hash_later = [&cancel_hashing, &hashing_ns](const std::string & path) {
        return std::async(std::launch::async, [path, &cancel_hashing, &hashing_ns] {
            const auto    start = hash_clock::now();
            std::string   h     = sha256_file(path, &cancel_hashing);
            const int64_t took =
                std::chrono::duration_cast<std::chrono::nanoseconds>(hash_clock::now() - start).count();
            for (int64_t seen = hashing_ns.load(); seen < took && !hashing_ns.compare_exchange_weak(seen, took);) {
            }
            return h;
        });
    };
    struct stop_on_exit {
        std::atomic<bool> & flag;

        ~stop_on_exit() { flag = true; }
    } stop_hashing{ cancel_hashing };
    if (o.method == "dior" || o.method == "generative") {
        o.model.fetch();
        if (o.model.params.model_path.empty() || o.model.params.mmproj_path.empty()) {
            throw error("the " + o.method + " method needs -m MODEL.gguf and --mmproj MMPROJ.gguf, or -hf OWNER/NAME");
        }
        if (o.method == "generative" && o.text_encoder.empty()) {
            throw error(
                "the generative method needs --text-encoder ENCODER.gguf (a sentence-transformers model "
                "converted by tools/convert-sentence)");
        }
        weights[0] = o.model.params.model_path;
        weights[1] = o.model.params.mmproj_path;
        hashes[0]  = hash_later(weights[0]);
        hashes[1]  = hash_later(weights[1]);
        if (o.method == "generative") {  // before the LVLM: a wrong file fails fast
            hashes[2] = hash_later(o.text_encoder);
            encoder   = sentence_encoder::load(
                  { o.text_encoder, o.model.params.n_threads, o.model.params.n_gpu_layers, o.model.params.verbose });
        }
        m = model::load(o.model.resolved());
        embed_params ep;
        ep.prompt                    = *ptype;
        ep.layers                    = o.method == "generative" ? std::vector<int>{ -1 } : parse_layers(o.layers, *m);
        ep.token                     = o.token;
        ep.position                  = positions_name == "native" ? positions::native : positions::sequential;
        ep.reuse_prefix              = !o.no_reuse;
        ep.parse_special             = o.parse_special;
        ep.source                    = *source;
        ep.generate                  = generating;
        ep.generation.max_new_tokens = o.max_new_tokens;
        ep.generation.temperature    = temperature;
        ep.generation.top_k          = o.top_k;
        ep.generation.top_p          = o.top_p;
        ep.generation.seed           = o.seed;
        ep.generation.repeat_penalty = o.repeat_penalty;
        m->resolve_layers(ep.layers);  // validates
        check_context(*m, ep, conditions, o);
        if (o.method == "dior") {
            meth = make_dior_method(*m, conditions, ep);
        } else {
            base.text_encoder = o.text_encoder_id;  // "" : the id recorded at conversion
            meth              = make_generative_method(*m, *encoder, conditions, ep, o.embed_text);
        }
        base.model_id       = o.model_id.empty() ? fs::path(o.model.params.model_path).stem().string() : o.model_id;
        base.engine_options = o.model.engine_options() + (o.parse_special ? " special=parse" : "");
    } else if (o.method == "clip" || o.method == "indirect") {
        if (o.clip_model.empty()) {
            throw error("the " + o.method + " method needs --clip-model CLIP.gguf (tools/convert-clip converts one)");
        }
        weights[0]    = o.clip_model;
        hashes[0]     = hash_later(weights[0]);
        clip          = clip_model::load({ o.clip_model, o.model.params.n_threads, o.model.params.n_gpu_layers != 0 });
        base.model_id = o.model_id.empty() ? clip->name() : o.model_id;
        if (o.method == "clip") {
            meth = make_clip_method(*clip);
        } else {
            std::vector<indirect_texts> aspects;
            for (auto & t : load_indirect_texts(o.indirect_texts)) {
                if (t.dataset == base.dataset) {
                    aspects.push_back(std::move(t));
                }
            }
            if (aspects.empty()) {
                throw error(
                    printable(o.indirect_texts) + " has no InDiReCT texts for '" + base.dataset +
                    "'; pass --indirect-texts FILE with a config for it (see data/reference/indirect_texts.json)");
            }
            dimredrecon_params dp;
            dp.components = o.components;
            dp.seed       = o.indirect_seed;
            meth          = make_indirect_method(*clip, aspects, dp);
        }
    } else {
        throw error("--method " + o.method + ": use dior, clip, indirect or generative");
    }

    auto st            = store::open(o.out);
    base.model_sha256  = hashes[0].get();
    base.mmproj_sha256 = hashes[1].valid() ? hashes[1].get() : std::string();
    base.model_path    = fs::absolute(weights[0]).string();
    base.mmproj_path   = weights[1].empty() ? std::string() : fs::absolute(weights[1]).string();
    if (encoder) {
        base.text_encoder_sha256 = hashes[2].get();
    }
    if (o.model.params.verbose) {
        std::fprintf(stderr, "dior: model files hashed (SHA-256) in %.2f s, while the model loaded\n",
                     (double)hashing_ns.load() / 1e9);
    }

    // --- the method's settings ---------------------------------------------------------------
    const std::vector<setting> settings = meth->settings(base);
    std::vector<int64_t>       all_ids;
    for (const auto & s : settings) {
        all_ids.push_back(st->add_setting(s));
    }
    const int width = settings.empty() ? 0 : settings[0].n_embd;

    // --- the images ------------------------------------------------------------------------
    g_interrupted = 0;
    for (int sig : k_stop_signals) {
        std::signal(sig, on_stop_signal);
    }
    size_t   n_embedded = 0, n_skipped = 0, n_failed = 0;
    progress bar(images.size());
    size_t   done = 0;
    // The next image that still misses vectors is read and decoded in the background while the
    // method works on the current one; its errors surface when its turn comes, as if read then.
    struct decoded {
        std::vector<uint8_t> bytes;
        image                img;
    };
    std::string          ahead_path;
    std::future<decoded> ahead;
    for (size_t i = 0; i < images.size(); ++i) {
        const std::string & path = images[i];
        if (g_interrupted) {
            break;
        }
        ++done;
        std::future<decoded> mine;
        if (ahead.valid() && ahead_path == path) {
            mine = std::move(ahead);
        }
        try {
            auto                 missing = st->missing(all_ids, path);
            std::vector<uint8_t> bytes;
            struct stat          sb {};
            const bool           have_stat = stat(path.c_str(), &sb) == 0;
            if (missing.size() < all_ids.size()) {
                // Vectors are stored for this path: are they still of this file's content?
                const auto known = st->image(path);
                if (known && have_stat && (known->bytes != (int64_t)sb.st_size || known->mtime_ns != mtime_ns(sb))) {
                    bytes = read_file(path, o.limits.max_file_bytes);
                    if (sha256_hex(bytes.data(), bytes.size()) != known->sha256) {
                        st->forget_image(path);  // changed: every stored vector of it is stale
                        missing = all_ids;
                        bar.message("changed since it was embedded, embedding it again: " + printable(path));
                    } else if (missing.empty()) {
                        store::image_info same = *known;
                        same.mtime_ns          = mtime_ns(sb);
                        st->put(same, {});  // touched, not changed
                    }
                }
            }
            if (missing.empty()) {
                ++n_skipped;
                bar.update(done, n_embedded + n_failed, path);
                continue;
            }
            // Only the settings that still miss a vector are computed.
            std::vector<size_t> which;
            for (size_t k = 0; k < all_ids.size(); ++k) {
                if (std::find(missing.begin(), missing.end(), all_ids[k]) != missing.end()) {
                    which.push_back(k);
                }
            }
            image img;
            if (bytes.empty() && mine.valid()) {
                decoded d = mine.get();  // rethrows this image's read or decode error
                bytes     = std::move(d.bytes);
                img       = std::move(d.img);
            } else {
                if (bytes.empty()) {
                    bytes = read_file(path, o.limits.max_file_bytes);
                }
                img = decode_image(bytes.data(), bytes.size(), path, o.image_max_size, o.limits);
            }
            if (i + 1 < images.size() && !g_interrupted && !st->missing(all_ids, images[i + 1]).empty()) {
                ahead_path = images[i + 1];
                ahead      = std::async(std::launch::async, [p = ahead_path, &o] {
                    decoded d;
                    d.bytes = read_file(p, o.limits.max_file_bytes);
                    d.img   = decode_image(d.bytes.data(), d.bytes.size(), p, o.image_max_size, o.limits);
                    return d;
                });
            }
            const auto outputs = meth->embed(img, which);

            store::image_vectors row;
            row.image = { path,       sha256_hex(bytes.data(), bytes.size()), (int64_t)bytes.size(), img.width,
                          img.height, have_stat ? mtime_ns(sb) : -1 };
            for (size_t k = 0; k < which.size(); ++k) {
                row.vectors.emplace_back(all_ids[which[k]], outputs[k].vector);
                if (generating) {
                    row.texts.emplace_back(all_ids[which[k]], outputs[k].text);
                }
            }
            st->put_all({ row });
            ++n_embedded;
        } catch (const store_error & e) {
            throw store_error(std::string(e.what()) + "\nthe store keeps every image committed before; fix the cause " +
                              "(space, permissions) and run the same command again to resume");
        } catch (const std::exception & e) {
            // About this image (a dior::error names the file; anything else, e.g. out of memory
            // while decoding, is still this image's failure). Keep going with the other images.
            const std::string msg    = e.what();
            const std::string reason = !path.empty() && msg.rfind(path + ": ", 0) == 0 ? msg.substr(path.size() + 2)
                                       : path.empty() && msg.rfind("'': ", 0) == 0     ? msg.substr(4)
                                                                                       : msg;
            st->put_failure(path, reason);
            bar.message("error: " + printable(path) + ": " + printable(reason));
            ++n_failed;
        }
        bar.update(done, n_embedded + n_failed, path);
    }
    for (int sig : k_stop_signals) {
        std::signal(sig, SIG_DFL);
    }
    // A signal that came after the last image stops nothing: the run is complete.
    const int stopped_by = n_embedded + n_skipped + n_failed < images.size() ? g_interrupted.load() : 0;

    const double secs = bar.seconds();
    std::fprintf(stderr,
                 "%zu images: %zu embedded, %zu skipped (already stored), %zu failed%s; %s (width %d); %.1f s, "
                 "%.2f img/s\nstore: %s\n",
                 images.size(), n_embedded, n_skipped, n_failed,
                 n_failed ? (" (reasons: dior status --db " + o.out + ")").c_str() : "",
                 o.method == "dior" && !generating
                     ? (std::to_string(conditions.size()) + " conditions x " +
                        std::to_string(settings.size() / std::max<size_t>(1, conditions.size())) + " layers")
                           .c_str()
                     : (std::to_string(settings.size()) + " settings (" + o.method + ")").c_str(),
                 width, secs, secs > 0 ? (double)n_embedded / secs : 0.0, o.out.c_str());
    if (stopped_by) {
        std::fprintf(stderr,
                     "interrupted (%s) after %zu of %zu images; everything embedded so far is stored. Run the same "
                     "command again to resume.\n",
                     strsignal(stopped_by), n_embedded + n_skipped + n_failed, images.size());
        return 128 + stopped_by;  // 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP
    }
    if (!o.npy_dir.empty()) {
        export_npy(*st, all_ids, o.npy_dir);
        std::fprintf(stderr, "npy: %s\n", o.npy_dir.c_str());
    }
    if (n_embedded + n_skipped == 0) {
        std::fprintf(stderr, "error: none of the %zu images could be embedded\n", images.size());
        return exit_fatal;
    }
    return n_failed ? exit_partial : exit_ok;
}

}  // namespace

void register_embed(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<embed_options>();
    auto * cmd = app.add_subcommand("embed", "embed images under one or more conditions into a store");
    o->model.add(*cmd);
    cmd->add_option("inputs", o->inputs, "image files and folders");
    cmd->add_option("--list", o->list_file, "a text file with one image path per line");
    cmd->add_option("--dataset", o->dataset,
                    "a dataset of the reference (synthetic_cars, cars196, cub200, "
                    "deepfashion, movie_posters): its images and all its aspects");
    cmd->add_option("--datasets-dir", o->datasets_dir, "folder holding one flat folder per dataset");
    cmd->add_option("--shard", o->shard,
                    "I/N: only the images at positions I, I+N, ... of the listing (I from 0); N runs cover all, "
                    "dior merge joins their stores");
    cmd->add_option("--name", o->name, "name of an ad-hoc image set (default: the folder's name)");
    cmd->add_option("--model-id", o->model_id,
                    "model name for settings and exports, e.g. Qwen/Qwen2.5-VL-7B-Instruct (default: file name)");
    cmd->add_option("-c,--condition", o->conditions, "a condition, e.g. \"car color\" (repeatable)")
        ->allow_extra_args(false);
    cmd->add_option("--conditions-file", o->conditions_file, "a text file with one condition per line");
    cmd->add_flag("--unconditional", o->unconditional, "also embed with the prompt that has no condition");
    cmd->add_option("--prompt-type,--prompt_type", o->prompt_type,
                    "describe, express, summarize, capture, convey, depict or describe_unconstraint");
    cmd->add_option("--layer,--num_layer", o->layers,
                    "hidden-state index (HF hidden_states; -1 = final; repeatable, comma list, or 'all')")
        ->allow_extra_args(false);
    cmd->add_option("--token,--num_token", o->token,
                    "token index (-1 = last prompt token; negative counts from the end)");
    cmd->add_option("--image-max-size,--image_max_size", o->image_max_size,
                    "downscale so the longer side is at most this");
    cmd->add_option("--positions", o->positions_name,
                    "sequential (the reference's DIOR default) or native (M-RoPE; the default of --method "
                    "generative, as the reference's generate() runs)");
    cmd->add_flag("--no-prefix-reuse", o->no_reuse, "recompute the whole prompt for every condition");
    cmd->add_flag("--use_cache", o->use_cache, "reuse the image prefix across conditions (the default)");
    cmd->add_flag("--parse-special", o->parse_special,
                  "tokenize special-token text in a condition (e.g. <|im_end|>) as control tokens, as the "
                  "reference's processor does (default: a condition is plain text)");
    cmd->add_option("-o,--out", o->out, "the store (SQLite file; created if missing, appended to otherwise)");
    cmd->add_option("--npy", o->npy_dir, "also write this run's settings as .npy files + manifest.json here");
    cmd->add_option("--method", o->method,
                    "dior (default), clip (the CLIP baseline), indirect (InDiReCT: CLIP + a projection fitted "
                    "on each aspect's texts) or generative (the LVLM's answer embedded by --text-encoder)");
    cmd->add_option("--clip-model", o->clip_model, "CLIP GGUF for --method clip / indirect (tools/convert-clip)");
    cmd->add_option("--indirect-texts", o->indirect_texts,
                    "InDiReCT condition texts, as data/reference/indirect_texts.json (default: the reference's)");
    cmd->add_option("--components", o->components, "InDiReCT: rows of the fitted projection (default 128)");
    cmd->add_option("--indirect-seed", o->indirect_seed, "InDiReCT: seed of the projection's initialisation");
    cmd->add_option("--source,--embedding_source", o->source,
                    "DIOR's vector: input_last (the last prompt token, default), first_output (the first "
                    "generated token) or mean_output (the mean over the generated tokens)");
    cmd->add_option("--max-new-tokens,--gen_max_new_tokens", o->max_new_tokens,
                    "generation: at most this many tokens (default 16); stops at the end of the turn");
    cmd->add_flag("--sample,--gen_do_sample", o->do_sample,
                  "generation: sample instead of greedy decoding (transformers' do_sample)");
    cmd->add_option("--temperature,--gen_temperature", o->temperature,
                    "with --sample: the temperature (default 1, as transformers)");
    cmd->add_option("--top-k", o->top_k, "with --sample: keep the k most likely tokens (default 50, as transformers)");
    cmd->add_option("--top-p", o->top_p, "with --sample: nucleus sampling mass (default 1: off)");
    cmd->add_option("--seed", o->seed, "with --sample: the seed (each image and condition starts from it)");
    cmd->add_option("--repeat-penalty,--repetition_penalty", o->repeat_penalty,
                    "generation: transformers' repetition_penalty over prompt and answer (default 1 = off; use "
                    "the model's generation_config.json value to reproduce transformers' generate())");
    cmd->add_option("--text-encoder", o->text_encoder,
                    "generative: the sentence encoder GGUF (tools/convert-sentence), e.g. sentence-t5-base");
    cmd->add_option("--text-encoder-id", o->text_encoder_id,
                    "generative: its id in settings and folder names (default: the id recorded at conversion)");
    cmd->add_option("--embed-text", o->embed_text,
                    "generative: whole (prompt + answer decoded, the reference's behaviour; default) or answer");
    cmd->add_option("--max-file-size", o->limits.max_file_bytes,
                    "refuse image files larger than this many bytes (default 1 GiB; 0: no limit)");
    cmd->add_option("--max-image-pixels", o->limits.max_pixels,
                    "refuse images with more pixels than this, from their header (default 178956970, Pillow's "
                    "decompression-bomb limit; 0: no limit)");
    cmd->callback([o, &exit_code] { exit_code = run_embed(*o); });
}

}  // namespace dior::cli
