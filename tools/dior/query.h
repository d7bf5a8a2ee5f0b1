// What `dior search`, `dior serve` and `dior report` share: which stored settings a request means,
// the index of a setting's vectors, and the vectors of a new image under stored settings.
#pragma once

#include "dior.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace dior::cli {

// Settings chosen by id, or by what they are: condition ("none": the unconditional prompt),
// method (the setting's source; "dior" means input_last), layer and dataset. Empty: any.
struct setting_filter {
    std::vector<int64_t>     ids;
    std::vector<std::string> conditions;
    std::string              method;
    std::optional<int>       layer;
    std::string              dataset;
};
// An existing store, read-only; dior::error saying how to make one when the file is not there.
std::unique_ptr<store> open_existing_store(const std::string & db);

// dior::error naming what was asked and what the store holds when nothing matches.
std::vector<stored_setting> select_settings(const store & st, const setting_filter & f);

// "dior" for input_last, else the source ("clip", "indirect", "generative", "first_output", ...).
std::string method_of(const setting & s);
// One line: "#3 dior, describe, car color, layer -1, Qwen2.5-VL-3B (cars: 120 images)".
std::string describe(const stored_setting & s);

// The vectors of a setting in an exact index, with their image paths (row order).
struct setting_index {
    stored_setting           s;
    std::vector<std::string> paths;
    vector_index             index;
};
std::shared_ptr<const setting_index> load_index(const store & st, const stored_setting & s, metric m);

// The paths under which the store holds an image: the path given (when stored), then every stored
// image with the same content (SHA-256; "" skips that), so that a query given by another path to the
// same file is found too. One pass over the store's images.
std::vector<std::string> stored_paths(const store & st, const std::string & path, const std::string & sha256);
// The row of the first of those paths that a setting holds.
std::optional<size_t> stored_row(const setting_index & ix, const std::vector<std::string> & paths);

// A query's neighbours under one setting.
struct setting_hits {
    std::shared_ptr<const setting_index> ix;
    bool                                 stored = false;  // its stored vector was used (and left out)
    std::vector<neighbor>                neighbors;
};
// The vectors of the query image under the settings that do not hold it, in their order.
using embed_fn = std::function<std::vector<std::vector<float>>(const std::vector<setting> &)>;
// The k nearest under each index: the query's stored vector where the setting holds one of `known`
// (stored_paths), else a vector from `embed`, called once for all such settings (not at all when
// every setting holds the image).
std::vector<setting_hits> search_indexes(const std::vector<std::shared_ptr<const setting_index>> & indexes,
                                         const std::vector<std::string> & known, size_t k, const embed_fn & embed);

// JSON of a stored setting (id, name, label, method, dataset, model, prompt, condition, layer,
// images, can_embed, can_embed_text) and of one setting's hits ({"setting", "query_stored", "neighbors": [{"rank",
// "path", "distance"}]}), as `dior search --json` and `dior serve` answer.
nlohmann::json setting_json(const stored_setting & s);
nlohmann::json hits_json(const setting_hits & h);

// Models loaded on first use (and kept) to embed new query images under stored settings, checked
// against the hashes the settings recorded. DIOR (input_last, first_output, mean_output) and CLIP
// settings can be embedded; others (InDiReCT, generative) throw dior::error saying to embed the
// image with `dior embed` first.
class query_embedder {
  public:
    struct files {  // override the paths recorded in the settings (files moved); "" keeps them
        std::string model, mmproj, clip_model;
        std::string indirect_texts;  // InDiReCT settings' texts (default: the reference's)
        int         n_threads    = 0;
        int         n_gpu_layers = -1;
        int         image_batch  = 0;  // --image-batch (0: auto)
        bool        verbose      = false;
    };
    explicit query_embedder(files f);
    ~query_embedder();

    // Whether new images can be embedded for this setting (its method, not its files).
    static bool can_embed(const setting & s);
    // Whether a text query can be embedded into this setting's space: CLIP settings (the text
    // tower's features live beside the image tower's) and InDiReCT settings (the text's features
    // through the setting's projection, fitted again from its texts).
    static bool can_embed_text(const setting & s);

    // The vector of the image (encoded bytes, named `source` in messages) under each setting, in
    // order. Not thread-safe: one call at a time.
    std::vector<std::vector<float>> embed(const std::vector<uint8_t> & bytes, const std::string & source,
                                          const std::vector<setting> & settings, const image_limits & limits);
    // Several images under the same settings, evaluated together where the model can: out[i] is
    // image i's. Throws on the first image that fails (callers then go one image at a time).
    struct input {
        const std::vector<uint8_t> * bytes;
        std::string                  source;
    };
    std::vector<std::vector<std::vector<float>>> embed_many(const std::vector<input> &   images,
                                                            const std::vector<setting> & settings,
                                                            const image_limits &         limits);
    // The vector of `text` under each setting, in order: CLIP settings' text features; InDiReCT
    // settings' normalize(U normalize(text features)), U fitted again as the run fitted it (its
    // texts found by the hash the setting recorded). dior::error naming the setting otherwise.
    std::vector<std::vector<float>> embed_text(const std::string & text, const std::vector<setting> & settings);
    // How many images embed_many evaluates together (the loaded model's; 1 before one is loaded).
    int image_batch() const;

  private:
    struct impl;
    std::unique_ptr<impl> p_;
};

// model_params as a setting's engine_options string recorded them ("kv=f32 fa=0 vfa=1 processor=fast").
model_params params_from_engine_options(const std::string & engine_options, model_params base);

}  // namespace dior::cli
