// dior search: the nearest stored images of a query image under stored settings. A query that is
// in the store (by path or by content) uses its stored vector and is left out of its own results;
// a new image is embedded with the setting's own model and options. A text query (--text) is
// answered under CLIP settings (its CLIP text features against the stored image features) and
// InDiReCT settings (the text features through the setting's projection).
#include "commands.h"
#include "dior_json.h"
#include "query.h"

#include <cstdio>
#include <nlohmann/json.hpp>

using json = nlohmann::json;

namespace dior::cli {
namespace {

struct search_options {
    std::string                db = "embeddings.db";
    std::string                query;
    std::optional<std::string> text;
    setting_filter             filter;
    size_t                     k       = 10;
    std::string                metric  = "l2";
    bool                       as_json = false;
    query_embedder::files      files;
    hub_source                 hf;
    image_limits               limits;
};

int run_search(search_options o) {
    if (o.k == 0) {
        throw error("-k must be at least 1");
    }
    const auto m = parse_metric(o.metric);
    if (!m) {
        throw error("--metric " + o.metric + ": use l2 or cosine");
    }
    if (o.query.empty() == !o.text) {
        throw error("give a query image or --text TEXT (one of them)");
    }
    auto st   = open_existing_store(o.db);
    auto sets = select_settings(*st, o.filter);
    if (o.text && o.filter.ids.empty() && o.filter.method.empty()) {  // a text: the settings that take one
        std::erase_if(sets, [](const stored_setting & s) { return !query_embedder::can_embed_text(s.s); });
        if (sets.empty()) {
            throw error(
                "a text query needs a CLIP or InDiReCT setting, and none of the chosen settings is one "
                "(dior embed --method clip makes one; dior status lists them)");
        }
    }
    std::vector<std::shared_ptr<const setting_index>> indexes;
    for (const auto & s : sets) {
        indexes.push_back(load_index(*st, s, *m));
    }
    std::vector<std::vector<float>> text_vectors;  // --text: the query vector of each setting
    std::vector<setting_hits>       hits;
    if (o.text) {
        query_embedder emb(o.files);
        hits = search_indexes(indexes, {}, o.k, [&](const std::vector<setting> & missing) {
            return text_vectors = emb.embed_text(*o.text, missing);
        });
    } else {
        const auto bytes  = read_file(o.query, o.limits.max_file_bytes);
        const auto sha256 = sha256_hex(bytes.data(), bytes.size());
        const auto known  = stored_paths(*st, o.query, sha256);
        hits              = search_indexes(indexes, known, o.k, [&](const std::vector<setting> & missing) {
            o.hf.fetch(o.files.model, o.files.mmproj);
            query_embedder emb(o.files);
            return emb.embed(bytes, o.query, missing, o.limits);
        });
    }
    const std::string query_name = o.text ? "text '" + *o.text + "'" : o.query;

    json out = { { "query", o.text ? json(nullptr) : json(o.query) },
                 { "text", o.text ? json(*o.text) : json(nullptr) },
                 { "metric", metric_name(*m) },
                 { "results", json::array() } };
    for (size_t at = 0; at < hits.size(); ++at) {
        const auto & h = hits[at];
        if (o.as_json) {
            out["results"].push_back(hits_json(h));
            if (o.text) {
                out["results"].back()["query_vector"] = text_vectors.at(at);
            }
            continue;
        }
        std::printf("%s\n  query %s (%s), %s distance\n", describe(h.ix->s).c_str(), printable(query_name).c_str(),
                    o.text     ? "text features"
                    : h.stored ? "stored"
                               : "embedded now",
                    metric_name(*m));
        for (size_t i = 0; i < h.neighbors.size(); ++i) {
            std::printf("  %3zu  %10.4f  %s\n", i + 1, h.neighbors[i].distance,
                        printable(h.ix->paths[h.neighbors[i].row]).c_str());
        }
        std::printf("\n");
    }
    if (o.as_json) {
        std::printf("%s\n", json_text(out, 2).c_str());
    }
    return exit_ok;
}

}  // namespace

void register_search(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<search_options>();
    auto * cmd = app.add_subcommand("search", "nearest stored images of a query image, under stored settings");
    cmd->add_option("query", o->query, "the query image (stored, or embedded now)");
    cmd->add_option("--text", o->text, "a text query instead, under CLIP and InDiReCT settings");
    cmd->add_option("--indirect-texts", o->files.indirect_texts,
                    "for a text under InDiReCT settings: the texts file of the run (default: the reference's)");
    cmd->add_option("--db", o->db, "the store")->default_str("embeddings.db");
    cmd->add_option("--setting", o->filter.ids, "setting ids (dior status lists them; repeatable)");
    cmd->add_option("-c,--condition", o->filter.conditions,
                    "settings of this condition (repeatable; none: no condition)");
    cmd->add_option("--method", o->filter.method, "settings of this method: dior, clip, indirect, generative, ...");
    cmd->add_option("--layer", o->filter.layer, "settings of this layer, as requested when embedding (-1: the last)");
    cmd->add_option("--dataset", o->filter.dataset, "settings of this dataset or image set");
    cmd->add_option("-k", o->k, "neighbours per setting")->default_str("10");
    cmd->add_option("--metric", o->metric, "l2 (Euclidean, as the evaluation ranks) or cosine (1 - cosine similarity)")
        ->default_str("l2");
    cmd->add_flag("--json", o->as_json, "print JSON");
    cmd->add_option("-m,--model", o->files.model, "for new query images: the text model, if moved since embedding");
    cmd->add_option("--mmproj", o->files.mmproj, "for new query images: the projector, if moved");
    o->hf.add(*cmd);
    cmd->add_option("--clip-model", o->files.clip_model, "for new query images: the CLIP model, if moved");
    cmd->add_option("-t,--threads", o->files.n_threads, "CPU threads (0: all)");
    cmd->add_option("--gpu-layers", o->files.n_gpu_layers, "layers to offload to a GPU build (-1: all)");
    cmd->add_flag("-v,--verbose", o->files.verbose, "show llama.cpp's logs");
    cmd->callback([o, &exit_code] { exit_code = run_search(*o); });
}

}  // namespace dior::cli
