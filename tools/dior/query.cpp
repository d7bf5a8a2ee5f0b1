#include "query.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace dior::cli {

std::string method_of(const setting & s) {
    return s.source == "input_last" ? "dior" : s.source;
}

std::string describe(const stored_setting & st) {
    const setting & s = st.s;
    // Appended piece by piece (GCC 12 warns falsely about "#" + std::to_string(...)).
    std::string out = "#";
    out.append(std::to_string(st.id)).append(" ").append(method_of(s));
    if (!s.prompt_type.empty() && s.source != "clip") {
        out.append(", ").append(s.prompt_type);
    }
    if (s.condition) {
        out.append(", '").append(*s.condition).append("'");
    } else {
        out.append(", no condition");
    }
    if (s.source != "clip" && s.source != "indirect" && s.source != "generative") {
        out.append(", layer ").append(std::to_string(s.layer));
    }
    out.append(", ").append(s.model_id).append(" (").append(s.dataset).append(": ");
    out.append(std::to_string(st.n_vectors)).append(" images)");
    return out;
}

std::unique_ptr<store> open_existing_store(const std::string & db) {
    if (!fs::exists(db)) {
        throw error("store not found: " + printable(db) + " (dior embed writes one; --db names it)");
    }
    return store::open(db, true);
}

std::vector<stored_setting> select_settings(const store & st, const setting_filter & f) {
    const auto                  all = st.settings();
    std::vector<stored_setting> out;
    for (const auto & s : all) {
        if (!f.ids.empty() && std::find(f.ids.begin(), f.ids.end(), s.id) == f.ids.end()) {
            continue;
        }
        if (!f.conditions.empty()) {
            const std::string c = s.s.condition.value_or("none");
            if (std::find(f.conditions.begin(), f.conditions.end(), c) == f.conditions.end()) {
                continue;
            }
        }
        if (!f.method.empty() && f.method != method_of(s.s) && f.method != s.s.source) {
            continue;
        }
        if (f.layer && *f.layer != s.s.layer) {
            continue;
        }
        if (!f.dataset.empty() && f.dataset != s.s.dataset) {
            continue;
        }
        out.push_back(s);
    }
    for (int64_t id : f.ids) {
        if (std::none_of(all.begin(), all.end(), [&](const stored_setting & s) { return s.id == id; })) {
            throw error("the store has no setting #" + std::to_string(id) + " (dior status lists them)");
        }
    }
    if (out.empty()) {
        std::string msg = all.empty() ? "the store holds no settings yet; run dior embed first"
                                      : "no stored setting matches; the store holds:";
        for (size_t i = 0; i < all.size() && i < 20; ++i) {
            msg += "\n  " + describe(all[i]);
        }
        if (all.size() > 20) {
            msg += "\n  ... (" + std::to_string(all.size() - 20) + " more: dior status)";
        }
        throw error(msg);
    }
    return out;
}

std::shared_ptr<const setting_index> load_index(const store & st, const stored_setting & s, metric m) {
    std::vector<std::string> paths;
    matrix                   x = st.vectors(s.id, &paths);
    try {
        return std::make_shared<const setting_index>(
            setting_index{ s, std::move(paths), vector_index(std::move(x), m) });
    } catch (const error & e) {
        throw error("setting " + describe(s) + ": " + e.what());
    }
}

std::vector<std::string> stored_paths(const store & st, const std::string & path, const std::string & sha256) {
    std::vector<std::string> out;
    if (!path.empty() && st.image(path)) {
        out.push_back(path);
    }
    if (!sha256.empty()) {
        for (const auto & im : st.images()) {
            if (im.sha256 == sha256 && im.path != path) {
                out.push_back(im.path);
            }
        }
    }
    return out;
}

std::optional<size_t> stored_row(const setting_index & ix, const std::vector<std::string> & paths) {
    for (const auto & p : paths) {  // ix.paths is sorted (store::vectors orders rows by path)
        const auto it = std::lower_bound(ix.paths.begin(), ix.paths.end(), p);
        if (it != ix.paths.end() && *it == p) {
            return (size_t)(it - ix.paths.begin());
        }
    }
    return std::nullopt;
}

std::vector<setting_hits> search_indexes(const std::vector<std::shared_ptr<const setting_index>> & indexes,
                                         const std::vector<std::string> & known, size_t k, const embed_fn & embed) {
    std::vector<setting_hits>          hits(indexes.size());
    std::vector<std::vector<float>>    queries(indexes.size());
    std::vector<std::optional<size_t>> rows(indexes.size());
    std::vector<setting>               missing;
    std::vector<size_t>                missing_at;
    for (size_t i = 0; i < indexes.size(); ++i) {
        hits[i].ix = indexes[i];
        rows[i]    = stored_row(*indexes[i], known);
        if (rows[i]) {
            queries[i]     = indexes[i]->index.vector(*rows[i]);
            hits[i].stored = true;
        } else {
            missing.push_back(indexes[i]->s.s);
            missing_at.push_back(i);
        }
    }
    if (!missing.empty()) {
        auto vs = embed(missing);
        for (size_t j = 0; j < vs.size(); ++j) {
            queries[missing_at[j]] = std::move(vs[j]);
        }
    }
    for (size_t i = 0; i < indexes.size(); ++i) {
        hits[i].neighbors = indexes[i]->index.search(queries[i].data(), queries[i].size(), k, rows[i]);
    }
    return hits;
}

nlohmann::json setting_json(const stored_setting & s) {
    using json = nlohmann::json;
    return { { "id", s.id },
             { "name", reference_dir_name(s.s) },
             { "label", describe(s) },
             { "method", method_of(s.s) },
             { "dataset", s.s.dataset },
             { "model_id", s.s.model_id },
             { "prompt_type", s.s.prompt_type },
             { "condition", s.s.condition ? json(*s.s.condition) : json(nullptr) },
             { "layer", s.s.layer },
             { "images", s.n_vectors },
             { "can_embed", query_embedder::can_embed(s.s) },
             { "can_embed_text", query_embedder::can_embed_text(s.s) } };
}

nlohmann::json hits_json(const setting_hits & h) {
    nlohmann::json r = { { "setting", setting_json(h.ix->s) },
                         { "query_stored", h.stored },
                         { "neighbors", nlohmann::json::array() } };
    for (size_t i = 0; i < h.neighbors.size(); ++i) {
        r["neighbors"].push_back({ { "rank", i + 1 },
                                   { "path", h.ix->paths[h.neighbors[i].row] },
                                   { "distance", h.neighbors[i].distance } });
    }
    return r;
}

model_params params_from_engine_options(const std::string & engine_options, model_params p) {
    p.flash_attn        = false;
    p.kv_f16            = false;
    p.vision_flash_attn = false;  // settings written before it existed have no "vfa"
    p.processor         = image_processor::slow;
    std::istringstream in(engine_options);
    std::string        word;
    while (in >> word) {
        if (word == "kv=f16" || word == "kv=f32") {
            p.kv_f16 = word == "kv=f16";
        } else if (word == "fa=1" || word == "fa=0") {
            p.flash_attn = word == "fa=1";
        } else if (word == "vfa=1") {
            p.vision_flash_attn = true;
        } else if (word == "processor=fast") {
            p.processor = image_processor::fast;
        } else if (word == "resize=mtmd") {
            p.processor = image_processor::mtmd;
        } else if (word != "special=parse") {
            throw error("the recorded engine options '" + engine_options + "' hold '" + word +
                        "', which this build does not know; use the dior build that made the setting");
        }
    }
    return p;
}

bool query_embedder::can_embed(const setting & s) {
    return s.source == "clip" ||
           ((s.source == "input_last" || s.source == "first_output" || s.source == "mean_output") &&
            parse_prompt_type(s.prompt_type).has_value());
}

bool query_embedder::can_embed_text(const setting & s) {
    return s.source == "clip" || s.source == "indirect";
}

struct query_embedder::impl {
    files                                              f;
    std::map<std::string, std::unique_ptr<model>>      models;  // by files and engine options
    std::map<std::string, std::unique_ptr<clip_model>> clips;
    std::map<std::string, matrix>                      projections;  // InDiReCT's U, by setting
    std::map<std::string, std::string>                 checked;      // path -> its SHA-256

    // The CLIP model of a CLIP setting, loaded once.
    clip_model & clip_for(const stored_setting & st) {
        const std::string path =
            file_for(st, st.s.model_path, f.clip_model, st.s.model_sha256, "CLIP model", "--clip-model");
        auto & cm = clips[path];
        if (!cm) {
            cm = clip_model::load({ path, f.n_threads, f.n_gpu_layers != 0 });
        }
        return *cm;
    }

    // An InDiReCT setting's U, fitted again from the texts whose hash the setting recorded, with
    // its components and seed: DimRedRecon is deterministic, so it is the U of the run.
    const matrix & projection_for(const stored_setting & st) {
        const setting &   s   = st.s;
        const std::string key = s.model_path + '\n' + s.model_sha256 + '\n' + s.dataset + '\n' + s.prompt + '\n' +
                                std::to_string(s.components) + '\n' + s.engine_options;
        auto it = projections.find(key);
        if (it != projections.end()) {
            return it->second;
        }
        const std::string file =
            f.indirect_texts.empty() ? DIOR_DATA_DIR "/reference/indirect_texts.json" : f.indirect_texts;
        const indirect_texts * found = nullptr;
        const auto             all   = load_indirect_texts(file);
        for (const auto & t : all) {
            if (t.dataset == s.dataset && s.condition == t.aspect && indirect_setting_prompt(t) == s.prompt) {
                found = &t;
            }
        }
        if (!found) {
            throw error("setting " + describe(st) + ": " + printable(file) +
                        " has not the texts its projection was fitted on; pass --indirect-texts with the file "
                        "the run used");
        }
        dimredrecon_params dp;
        dp.components      = s.components;
        const auto seed_at = s.engine_options.rfind("seed=");
        dp.seed            = seed_at == std::string::npos ? 0 : std::stoull(s.engine_options.substr(seed_at + 5));
        clip_model & cm    = clip_for(st);
        return projections.emplace(key, fit_dimredrecon(indirect_text_matrix(cm, found->texts), dp).u).first->second;
    }

    // The file a setting names (or the override), checked against the hash it recorded.
    std::string file_for(const stored_setting & st, const std::string & recorded, const std::string & override_path,
                         const std::string & sha256, const char * what, const char * option) {
        const std::string path = override_path.empty() ? recorded : override_path;
        if (path.empty() || !fs::is_regular_file(path)) {
            throw error("setting " + describe(st) + ": its " + what + " " +
                        (path.empty() ? std::string("was not recorded") : printable(path) + " is not there") +
                        "; pass " + option + " FILE to embed new images");
        }
        auto it = checked.find(path);
        if (it == checked.end()) {
            it = checked.emplace(path, sha256_file(path)).first;
        }
        if (!sha256.empty() && it->second != sha256) {
            throw error("setting " + describe(st) + ": " + printable(path) + " is not the " + what +
                        " its vectors were made with (SHA-256 differs); pass " + option + " with that file");
        }
        return path;
    }
};

query_embedder::query_embedder(files f) : p_(std::make_unique<impl>()) {
    p_->f = std::move(f);
}

query_embedder::~query_embedder() = default;

std::vector<std::vector<float>> query_embedder::embed(const std::vector<uint8_t> & bytes, const std::string & source,
                                                      const std::vector<setting> & settings,
                                                      const image_limits &         limits) {
    return embed_many({ { &bytes, source } }, settings, limits).at(0);
}

std::vector<std::vector<float>> query_embedder::embed_text(const std::string &          text,
                                                           const std::vector<setting> & settings) {
    std::vector<std::vector<float>> out;
    for (const setting & s : settings) {
        const stored_setting st{ 0, s, 0 };
        if (!can_embed_text(s)) {
            throw error("setting " + describe(st) + ": a text query needs a CLIP or InDiReCT setting (a text " +
                        "tower in the image vectors' space); choose one with --method clip or --method indirect");
        }
        const std::vector<float> t = p_->clip_for(st).text_features(text);
        out.push_back(s.source == "indirect" ? indirect_embed(p_->projection_for(st), t) : t);
    }
    return out;
}

int query_embedder::image_batch() const {
    int n = 1;
    for (const auto & [key, m] : p_->models) {
        n = std::max(n, m->image_batch());
    }
    return n;
}

std::vector<std::vector<std::vector<float>>> query_embedder::embed_many(const std::vector<input> &   images,
                                                                        const std::vector<setting> & settings,
                                                                        const image_limits &         limits) {
    std::map<int, std::vector<image>> decoded;  // every image, by image_max_size
    const auto                        images_for = [&](int max_size) -> const std::vector<image> & {
        auto it = decoded.find(max_size);
        if (it == decoded.end()) {
            std::vector<image> imgs;
            for (const input & in : images) {
                imgs.push_back(decode_image(in.bytes->data(), in.bytes->size(), in.source, max_size, limits));
            }
            it = decoded.emplace(max_size, std::move(imgs)).first;
        }
        return it->second;
    };
    std::vector<std::vector<std::vector<float>>> out(images.size(), std::vector<std::vector<float>>(settings.size()));

    // DIOR settings that one embed() call can serve together: all but condition and layer equal.
    struct group {
        std::vector<size_t>                     members;
        std::vector<std::optional<std::string>> conditions;
        std::vector<int>                        layers;
    };
    std::map<std::string, group> groups;
    for (size_t i = 0; i < settings.size(); ++i) {
        const setting &      s = settings[i];
        const stored_setting st{ 0, s, 0 };
        if (!can_embed(s)) {
            throw error("setting " + describe(st) + ": new images cannot be embedded here for the '" + method_of(s) +
                        "' method; embed the image with dior embed first, then search by its path");
        }
        if (s.source == "clip") {
            const auto r = embed_batch(*make_clip_method(p_->clip_for(st)), images_for(s.image_max_size), { 0 });
            for (size_t k = 0; k < images.size(); ++k) {
                out[k][i] = r.at(k).at(0).vector;
            }
            continue;
        }
        std::ostringstream key;
        key << s.model_path << '\n'
            << s.mmproj_path << '\n'
            << s.model_sha256 << '\n'
            << s.mmproj_sha256 << '\n'
            << s.engine_options << '\n'
            << s.prompt_type << '\n'
            << s.token << '\n'
            << s.positions << '\n'
            << s.source << '\n'
            << s.image_max_size << '\n'
            << s.max_new_tokens << '\n'
            << s.temperature << '\n'
            << s.seed << '\n'
            << s.repeat_penalty;
        group & g = groups[key.str()];
        g.members.push_back(i);
        if (std::find(g.conditions.begin(), g.conditions.end(), s.condition) == g.conditions.end()) {
            g.conditions.push_back(s.condition);
        }
        if (std::find(g.layers.begin(), g.layers.end(), s.layer) == g.layers.end()) {
            g.layers.push_back(s.layer);
        }
    }

    for (const auto & [key, g] : groups) {
        const setting &      s = settings[g.members[0]];
        const stored_setting st{ 0, s, 0 };
        const std::string    text = p_->file_for(st, s.model_path, p_->f.model, s.model_sha256, "model", "-m");
        const std::string    mmproj =
            p_->file_for(st, s.mmproj_path, p_->f.mmproj, s.mmproj_sha256, "projector", "--mmproj");
        model_params mp;
        mp.model_path          = text;
        mp.mmproj_path         = mmproj;
        mp.n_threads           = p_->f.n_threads;
        mp.n_gpu_layers        = p_->f.n_gpu_layers;
        mp.verbose             = p_->f.verbose;
        mp.image_batch         = p_->f.image_batch;
        mp                     = params_from_engine_options(s.engine_options, mp);
        const std::string mkey = text + '\n' + mmproj + '\n' + s.engine_options;
        auto &            m    = p_->models[mkey];
        if (!m) {
            m = model::load(mp);
        }
        // Requested layers (-1, 36, ...) resolved; two spellings of one layer are computed once.
        std::vector<int> resolved = m->resolve_layers(g.layers), unique;
        for (int l : resolved) {
            if (std::find(unique.begin(), unique.end(), l) == unique.end()) {
                unique.push_back(l);
            }
        }
        embed_params ep;
        ep.prompt                    = *parse_prompt_type(s.prompt_type);
        ep.layers                    = unique;
        ep.token                     = s.token;
        ep.position                  = s.positions == "native" ? positions::native : positions::sequential;
        ep.parse_special             = s.engine_options.find("special=parse") != std::string::npos;
        ep.source                    = parse_embed_source(s.source).value_or(embed_source::input_last);
        ep.generate                  = ep.source != embed_source::input_last;
        ep.generation.max_new_tokens = std::max(1, s.max_new_tokens);
        ep.generation.temperature    = (float)s.temperature;
        ep.generation.seed           = s.seed;
        ep.generation.repeat_penalty = (float)s.repeat_penalty;
        // The method's settings run condition by condition, each over the unique layers: all of
        // them, from one step of the runs' batch step.
        const auto          meth = make_dior_method(*m, g.conditions, ep);
        std::vector<size_t> which(g.conditions.size() * unique.size());
        for (size_t k = 0; k < which.size(); ++k) {
            which[k] = k;
        }
        const auto r = embed_batch(*meth, images_for(s.image_max_size), which);
        for (size_t i : g.members) {
            const size_t c    = (size_t)(std::find(g.conditions.begin(), g.conditions.end(), settings[i].condition) -
                                      g.conditions.begin());
            const int    want = m->resolve_layers({ settings[i].layer })[0];
            const size_t l    = (size_t)(std::find(unique.begin(), unique.end(), want) - unique.begin());
            for (size_t k = 0; k < images.size(); ++k) {
                out[k][i] = r.at(k).at(c * unique.size() + l).vector;
            }
        }
    }
    return out;
}

}  // namespace dior::cli
