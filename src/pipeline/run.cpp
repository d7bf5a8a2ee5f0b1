// A run: the listing -> checks -> the method (model loaded, files hashed meanwhile) -> the store's
// settings -> every image that still misses a vector: read and decoded (the next one ahead, in
// the background), embedded, committed in one transaction. `dior embed`, the Python package and
// Ray all come through here.
#include "dior.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <sys/stat.h>

namespace fs = std::filesystem;

namespace dior {
namespace {

int64_t mtime_ns(const struct stat & sb) {
    return (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

// A line for the user: through the run's message callback, else on stderr.
void say(const run_events & ev, const std::string & line) {
    if (ev.message) {
        ev.message(line);
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
    }
}

bool cancelled(const run_events & ev) {
    return ev.cancel && ev.cancel->load();
}

// shard "I/N": the images at positions I, I+N, I+2N... of the listing (I from 0), so that N runs
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

// Name of an ad-hoc run's image set: the dataset, else the name given, else the folder's name,
// else "images".
std::string run_name(const run_options & o) {
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

// The images of the run, in order (absolute paths: a run resumes from any folder), and its conditions.
void list_run(const run_options & o, std::vector<std::string> & images,
              std::vector<std::optional<std::string>> & conditions) {
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
        conditions = o.conditions ? *o.conditions : d->aspects;
    } else {
        images     = collect_images(o.inputs, o.list_file);
        conditions = o.conditions ? *o.conditions : std::vector<std::optional<std::string>>{ std::nullopt };
    }
    if (conditions.empty()) {
        throw error("no conditions given: give at least one (none: the prompt without a condition)");
    }
    if (images.empty()) {
        throw error("no images given: pass image files, folders, --list FILE or --dataset NAME --datasets-dir DIR");
    }
}

// Everything that can be checked without a model, before any work: a mistake writes nothing.
void check_options(const run_options & o) {
    if (o.store.empty()) {
        throw error("-o/--out is empty: pass the store's file name");
    }
    if (o.image_max_size < 0) {
        throw error("--image-max-size " + std::to_string(o.image_max_size) +
                    ": use a size in pixels, or 0 for no limit");
    }
    check_model_params(o.model);
    if (o.limits.max_file_bytes < 0 || o.limits.max_pixels < 0) {
        throw error("--max-file-size and --max-image-pixels take a positive limit, or 0 for none");
    }
    for (const auto & l : o.layers) {
        if (l.find_first_not_of(" \t,") == std::string::npos) {
            throw error("--layer '" + l + "': give layer indices (e.g. -1, 0,12 or all)");
        }
    }
    if (o.token >= o.model.n_ctx || o.token < -o.model.n_ctx) {
        throw error("--token " + std::to_string(o.token) + " is outside any prompt that fits the context (--ctx-size " +
                    std::to_string(o.model.n_ctx) + ")");
    }
}

// The model files' SHA-256, computed while the models load (the per-user cache answers at once
// after the first run); a file that cannot be read fails the load first. Leaving the scope (a
// failed load) cancels what still runs: the flag is set before the futures wait for their tasks.
class background_hashes {
  public:
    ~background_hashes() { cancel_ = true; }

    void start(size_t slot, const std::string & path) {
        futures_[slot] = std::async(std::launch::async, [this, path] {
            const auto    t0   = clock::now();
            std::string   h    = sha256_file(path, &cancel_);
            const int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count();
            for (int64_t seen = longest_ns_.load(); seen < took && !longest_ns_.compare_exchange_weak(seen, took);) {
            }
            return h;
        });
    }

    // The hash of the file started in `slot` ("" when none was), rethrowing its read error.
    std::string get(size_t slot) { return futures_[slot].valid() ? futures_[slot].get() : std::string(); }

    double longest_seconds() const { return (double)longest_ns_.load() / 1e9; }

  private:
    using clock = std::chrono::steady_clock;
    std::atomic<bool>        cancel_{ false };
    std::atomic<int64_t>     longest_ns_{ 0 };
    std::future<std::string> futures_[3];  // after the atomics their tasks use: destroyed first
};

// The method of a run, with the models it holds and the identity of its settings.
struct loaded_method {
    std::unique_ptr<model>            lvlm;     // dior, generative
    std::unique_ptr<clip_model>       clip;     // clip, indirect
    std::unique_ptr<sentence_encoder> encoder;  // generative
    std::unique_ptr<method>           meth;
    setting                           base;
    bool                              generating = false;
};

loaded_method load_method(run_options o, const std::vector<std::optional<std::string>> & conditions,
                          const run_events & ev, double & hash_seconds) {
    auto ptype = parse_prompt_type(o.prompt_type);
    if (!ptype) {
        // As the reference does: an unknown prompt type falls back to describe.
        say(ev, "warning: unknown prompt type '" + o.prompt_type + "'; using 'describe'");
        ptype = prompt_type::describe;
    }
    // The reference's generative baseline calls generate() without position ids (native M-RoPE);
    // its DIOR path passes sequential ones.
    const std::string positions_name = !o.positions.empty()       ? o.positions
                                       : o.method == "generative" ? "native"
                                                                  : "sequential";
    if (positions_name != "sequential" && positions_name != "native") {
        throw error("--positions " + positions_name + ": use sequential or native");
    }
    const auto source = parse_embed_source(o.source);
    if (!source) {
        throw error("--source " + o.source + ": use input_last, first_output or mean_output");
    }
    loaded_method lm;
    lm.generating = o.method == "generative" || *source != embed_source::input_last;
    if (lm.generating && (o.max_new_tokens < 1 || o.max_new_tokens > o.model.n_ctx)) {
        throw error("--max-new-tokens " + std::to_string(o.max_new_tokens) + ": use 1 or more (default 16)");
    }
    // As transformers' generate(do_sample=...): a temperature alone does not sample.
    if (o.temperature != -1 && !o.do_sample) {
        say(ev, "warning: --temperature without --sample is ignored: generation is greedy");
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

    // --- the model: a missing or broken model fails before anything is written ----------------
    setting & base      = lm.base;
    base.dataset        = run_name(o);
    base.engine         = engine_version();
    base.image_max_size = o.image_max_size;

    std::string       weights[2];  // the files whose hashes identify the model
    background_hashes hashing;     // slots 0, 1: model, mmproj; 2: the sentence encoder
    if (o.method == "dior" || o.method == "generative") {
        if (ev.fetch_model) {
            ev.fetch_model(o.model);
        }
        if (o.model.model_path.empty() || o.model.mmproj_path.empty()) {
            throw error("the " + o.method + " method needs -m MODEL.gguf and --mmproj MMPROJ.gguf, or -hf OWNER/NAME");
        }
        if (o.method == "generative" && o.text_encoder.empty()) {
            throw error(
                "the generative method needs --text-encoder ENCODER.gguf (a sentence-transformers model "
                "converted by tools/convert-sentence)");
        }
        weights[0] = o.model.model_path;
        weights[1] = o.model.mmproj_path;
        hashing.start(0, weights[0]);
        hashing.start(1, weights[1]);
        if (o.method == "generative") {  // before the LVLM: a wrong file fails fast
            hashing.start(2, o.text_encoder);
            lm.encoder =
                sentence_encoder::load({ o.text_encoder, o.model.n_threads, o.model.n_gpu_layers, o.model.verbose });
        }
        lm.lvlm = model::load(o.model);
        embed_params ep;
        ep.prompt        = *ptype;
        ep.layers        = o.method == "generative" ? std::vector<int>{ -1 } : parse_layers(o.layers, *lm.lvlm);
        ep.token         = o.token;
        ep.position      = positions_name == "native" ? positions::native : positions::sequential;
        ep.reuse_prefix  = o.reuse_prefix;
        ep.parse_special = o.parse_special;
        ep.source        = *source;
        ep.generate      = lm.generating;
        ep.generation.max_new_tokens = o.max_new_tokens;
        ep.generation.temperature    = temperature;
        ep.generation.top_k          = o.top_k;
        ep.generation.top_p          = o.top_p;
        ep.generation.seed           = o.seed;
        ep.generation.repeat_penalty = o.repeat_penalty;
        lm.lvlm->resolve_layers(ep.layers);  // validates
        if (o.method == "dior") {
            lm.meth = make_dior_method(*lm.lvlm, conditions, ep);
        } else {
            base.text_encoder = o.text_encoder_id;  // "" : the id recorded at conversion
            lm.meth           = make_generative_method(*lm.lvlm, *lm.encoder, conditions, ep, o.embed_text);
        }
        base.model_id       = o.model_id.empty() ? fs::path(o.model.model_path).stem().string() : o.model_id;
        base.engine_options = engine_options_text(o.model) + (o.parse_special ? " special=parse" : "");
    } else if (o.method == "clip" || o.method == "indirect") {
        if (o.clip_model.empty()) {
            throw error("the " + o.method + " method needs --clip-model CLIP.gguf (tools/convert-clip converts one)");
        }
        weights[0] = o.clip_model;
        hashing.start(0, weights[0]);
        lm.clip       = clip_model::load({ o.clip_model, o.model.n_threads, o.model.n_gpu_layers != 0 });
        base.model_id = o.model_id.empty() ? lm.clip->name() : o.model_id;
        if (o.method == "clip") {
            lm.meth = make_clip_method(*lm.clip);
        } else {
            const std::string texts =
                o.indirect_texts.empty() ? DIOR_DATA_DIR "/reference/indirect_texts.json" : o.indirect_texts;
            std::vector<indirect_texts> aspects;
            for (auto & t : load_indirect_texts(texts)) {
                if (t.dataset == base.dataset) {
                    aspects.push_back(std::move(t));
                }
            }
            if (aspects.empty()) {
                throw error(
                    printable(texts) + " has no InDiReCT texts for '" + base.dataset +
                    "'; pass --indirect-texts FILE with a config for it (see data/reference/indirect_texts.json)");
            }
            dimredrecon_params dp;
            dp.components = o.components;
            dp.seed       = o.indirect_seed;
            lm.meth       = make_indirect_method(*lm.clip, aspects, dp);
        }
    } else {
        throw error("--method " + o.method + ": use dior, clip, indirect or generative");
    }

    base.model_sha256        = hashing.get(0);
    base.mmproj_sha256       = hashing.get(1);
    base.text_encoder_sha256 = hashing.get(2);
    base.model_path          = fs::absolute(weights[0]).string();
    base.mmproj_path         = weights[1].empty() ? std::string() : fs::absolute(weights[1]).string();
    hash_seconds             = hashing.longest_seconds();
    return lm;
}

// One image read and decoded, possibly ahead of its turn.
struct decoded {
    std::vector<uint8_t> bytes;
    image                img;
};

}  // namespace

void check_model_params(const model_params & p) {
    if (p.n_threads < 0) {
        throw error("-t/--threads " + std::to_string(p.n_threads) + ": use a count, or 0 for all");
    }
    if (p.n_gpu_layers < -1) {
        throw error("--gpu-layers " + std::to_string(p.n_gpu_layers) + ": use a count, or -1 for all");
    }
    if (p.n_ctx < 16 || p.n_batch < 1) {
        throw error("--ctx-size must be at least 16 and --batch-size at least 1");
    }
    if (p.image_batch < 0 || p.image_batch > 256) {
        throw error("--image-batch " + std::to_string(p.image_batch) +
                    ": use a count of images from 1 to 256, or auto");
    }
}

run_result run_embed(const run_options & o, const run_events & ev) {
    run_result                              r;
    std::vector<std::string>                images;
    std::vector<std::optional<std::string>> conditions;
    list_run(o, images, conditions);
    r.listed = images.size();
    if (!o.shard.empty()) {
        images = shard_of(images, o.shard);
        if (images.empty()) {  // more shards than images: this one has nothing to do
            r.no_images = true;
            return r;
        }
    }
    for (auto & p : images) {
        p = p.empty() ? p : fs::absolute(p).lexically_normal().string();
    }
    check_options(o);

    loaded_method lm = load_method(o, conditions, ev, r.hash_seconds);
    auto          st = store::open(o.store);
    if (o.model.verbose) {
        char line[96];
        std::snprintf(line, sizeof(line), "dior: model files hashed (SHA-256) in %.2f s, while the model loaded",
                      r.hash_seconds);
        say(ev, line);
    }

    // --- the method's settings ---------------------------------------------------------------
    r.settings     = lm.meth->settings(lm.base);
    r.n_conditions = conditions.size();
    for (const auto & s : r.settings) {
        r.setting_ids.push_back(st->add_setting(s));
    }
    r.width                          = r.settings.empty() ? 0 : r.settings[0].n_embd;
    const std::vector<int64_t> & ids = r.setting_ids;
    r.images                         = images.size();

    // --- the images ------------------------------------------------------------------------
    const auto t0 = std::chrono::steady_clock::now();
    if (ev.start) {
        ev.start(images.size());
    }
    size_t     done     = 0;
    const auto progress = [&](const std::string & path) {
        ++done;
        if (ev.progress) {
            ev.progress(done, images.size(), r.embedded + r.failed, path);
        }
    };
    // A failure is about one image (a dior::error names the file; anything else, e.g. out of memory
    // while decoding, is still this image's failure): recorded, and the run goes on.
    const auto fail = [&](const std::string & path, const std::exception & e) {
        const std::string msg    = e.what();
        const std::string reason = !path.empty() && msg.rfind(path + ": ", 0) == 0 ? msg.substr(path.size() + 2)
                                   : path.empty() && msg.rfind("'': ", 0) == 0     ? msg.substr(4)
                                                                                   : msg;
        st->put_failure(path, reason);
        r.failures.push_back({ path, reason });
        say(ev, "error: " + printable(path) + ": " + printable(reason));
        ++r.failed;
        progress(path);
    };
    const auto store_failed = [](const store_error & e) {
        return store_error(std::string(e.what()) + "\nthe store keeps every image committed before; fix the cause " +
                           "(space, permissions) and run the same command again to resume");
    };

    // Images decoded and waiting for the method, up to its batch size, all missing the same
    // settings. The method evaluates them together; if that fails, one at a time, so that only the
    // image at fault fails. Their vectors are stored in one transaction.
    struct waiting {
        std::string         path;
        store::image_info   info;
        image               img;
        std::vector<size_t> which;
    };
    std::vector<waiting> batch;
    const size_t         per_batch = std::max<size_t>(1, lm.meth->batch_size());
    const auto           flush     = [&] {
        std::vector<waiting> todo;
        todo.swap(batch);
        if (todo.empty()) {
            return;
        }
        std::vector<image> imgs;
        for (auto & w : todo) {
            imgs.push_back(std::move(w.img));
        }
        std::vector<std::optional<std::vector<method::output>>> outs(todo.size());
        try {
            auto all = embed_batch(*lm.meth, imgs, todo[0].which);
            for (size_t k = 0; k < todo.size(); ++k) {
                outs[k] = std::move(all.at(k));
            }
        } catch (const std::exception & e) {
            if (todo.size() == 1) {
                fail(todo[0].path, e);
            } else {
                for (size_t k = 0; k < todo.size(); ++k) {
                    try {
                        outs[k] = embed_batch(*lm.meth, { imgs[k] }, todo[k].which).at(0);
                    } catch (const std::exception & e1) {
                        fail(todo[k].path, e1);
                    }
                }
            }
        }
        std::vector<store::image_vectors> rows;
        for (size_t k = 0; k < todo.size(); ++k) {
            if (!outs[k]) {
                continue;
            }
            store::image_vectors row;
            row.image = todo[k].info;
            for (size_t i = 0; i < todo[k].which.size(); ++i) {
                row.vectors.emplace_back(ids[todo[k].which[i]], (*outs[k])[i].vector);
                if (lm.generating) {
                    row.texts.emplace_back(ids[todo[k].which[i]], (*outs[k])[i].text);
                }
            }
            rows.push_back(std::move(row));
        }
        st->put_all(rows);
        for (size_t k = 0; k < todo.size(); ++k) {
            if (outs[k]) {
                ++r.embedded;
                progress(todo[k].path);
            }
        }
    };

    // The next image that still misses vectors is read and decoded in the background while the
    // method works on the current one; its errors surface when its turn comes, as if read then.
    std::string          ahead_path;
    std::future<decoded> ahead;
    const auto           read_and_decode = [&o](const std::string & p) {
        decoded d;
        d.bytes = read_file(p, o.limits.max_file_bytes);
        d.img   = decode_image(d.bytes.data(), d.bytes.size(), p, o.image_max_size, o.limits);
        return d;
    };
    for (size_t i = 0; i < images.size(); ++i) {
        const std::string & path = images[i];
        if (cancelled(ev)) {
            break;
        }
        std::future<decoded> mine;
        if (ahead.valid() && ahead_path == path) {
            mine = std::move(ahead);
        }
        try {
            auto                 missing = st->missing(ids, path);
            std::vector<uint8_t> bytes;
            struct stat          sb {};
            const bool           have_stat = stat(path.c_str(), &sb) == 0;
            if (missing.size() < ids.size()) {
                // Vectors are stored for this path: are they still of this file's content?
                const auto known = st->image(path);
                if (known && have_stat && (known->bytes != (int64_t)sb.st_size || known->mtime_ns != mtime_ns(sb))) {
                    bytes = read_file(path, o.limits.max_file_bytes);
                    if (sha256_hex(bytes.data(), bytes.size()) != known->sha256) {
                        st->forget_image(path);  // changed: every stored vector of it is stale
                        missing = ids;
                        say(ev, "changed since it was embedded, embedding it again: " + printable(path));
                    } else if (missing.empty()) {
                        store::image_info same = *known;
                        same.mtime_ns          = mtime_ns(sb);
                        st->put(same, {});  // touched, not changed
                    }
                }
            }
            if (missing.empty()) {
                ++r.skipped;
                progress(path);
                continue;
            }
            // Only the settings that still miss a vector are computed.
            std::vector<size_t> which;
            for (size_t k = 0; k < ids.size(); ++k) {
                if (std::find(missing.begin(), missing.end(), ids[k]) != missing.end()) {
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
            if (i + 1 < images.size() && !cancelled(ev) && !st->missing(ids, images[i + 1]).empty()) {
                ahead_path = images[i + 1];
                ahead      = std::async(std::launch::async, read_and_decode, ahead_path);
            }
            if (!batch.empty() && batch[0].which != which) {
                flush();
            }
            waiting w;
            w.path  = path;
            w.info  = { path,       sha256_hex(bytes.data(), bytes.size()), (int64_t)bytes.size(), img.width,
                        img.height, have_stat ? mtime_ns(sb) : -1 };
            w.img   = std::move(img);
            w.which = std::move(which);
            batch.push_back(std::move(w));
            if (batch.size() >= per_batch) {
                flush();
            }
        } catch (const store_error & e) {
            throw store_failed(e);
        } catch (const std::exception & e) {
            fail(path, e);
        }
    }
    if (!cancelled(ev)) {
        try {
            flush();
        } catch (const store_error & e) {
            throw store_failed(e);
        }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // A cancel that came after the last image stops nothing: the run is complete.
    r.cancelled = r.embedded + r.skipped + r.failed < images.size();
    return r;
}

}  // namespace dior
