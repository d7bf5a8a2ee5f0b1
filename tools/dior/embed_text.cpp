// dior embed-text: the vectors of texts under a CLIP model's text tower (get_text_features, the
// space CLIP image vectors live in) or a sentence encoder (SentenceTransformer.encode), as JSON on
// stdout or as an (N, D) float32 .npy file. The library calls behind it: clip_model::text_features
// and sentence_encoder::encode.
#include "commands.h"
#include "dior_json.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace dior::cli {
namespace {

struct embed_text_options {
    std::vector<std::string> texts;
    std::string              texts_file;
    std::string              clip_model, sentence_model, npy;
    int                      n_threads = 0, n_gpu_layers = -1;
    bool                     verbose = false;
};

// One text a line (a final newline ends the last line, it does not start an empty one; "\r\n" too).
// Not the image and condition lists' reader: a text keeps its spaces, a leading "#" and its emptiness.
std::vector<std::string> read_lines(const std::string & path) {
    const auto               bytes = read_file(path, (int64_t)256 << 20);
    std::vector<std::string> out;
    std::string              line;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (bytes[i] == '\n') {
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            out.push_back(std::move(line));
            line.clear();
        } else {
            line.push_back((char)bytes[i]);
        }
    }
    if (!line.empty()) {
        out.push_back(std::move(line));
    }
    return out;
}

int run_embed_text(const embed_text_options & o) {
    if (o.clip_model.empty() == o.sentence_model.empty()) {
        throw error("give one of --clip-model FILE (CLIP text features) and --sentence-model FILE (sentence vectors)");
    }
    std::vector<std::string> texts = o.texts;
    if (!o.texts_file.empty()) {
        const auto more = read_lines(o.texts_file);
        texts.insert(texts.end(), more.begin(), more.end());
    }
    if (texts.empty()) {
        throw error("no texts: give them as arguments or with --file FILE (one a line)");
    }
    matrix      out;
    std::string name, kind;
    if (!o.clip_model.empty()) {
        auto m   = clip_model::load({ o.clip_model, o.n_threads, o.n_gpu_layers != 0 });
        name     = m->name();
        kind     = "clip";
        out.cols = (size_t)m->projection_dim();
        for (const auto & t : texts) {
            const auto v = m->text_features(t);
            out.data.insert(out.data.end(), v.begin(), v.end());
        }
    } else {
        auto m   = sentence_encoder::load({ o.sentence_model, o.n_threads, o.n_gpu_layers, o.verbose });
        name     = m->name();
        kind     = "sentence";
        out.cols = (size_t)m->n_embd();
        for (const auto & t : texts) {
            const auto v = m->encode(t);
            out.data.insert(out.data.end(), v.begin(), v.end());
        }
    }
    out.rows = texts.size();
    if (!o.npy.empty()) {
        write_npy(o.npy, out);
        std::fprintf(stderr, "wrote %zu %s vectors of width %zu to %s\n", out.rows, kind.c_str(), out.cols,
                     printable(o.npy).c_str());
        return exit_ok;
    }
    nlohmann::json j = {
        { "model", name }, { "kind", kind }, { "width", out.cols }, { "vectors", nlohmann::json::array() }
    };
    for (size_t i = 0; i < out.rows; ++i) {
        j["vectors"].push_back({ { "text", texts[i] },
                                 { "vector", std::vector<float>(out.data.begin() + (long)(i * out.cols),
                                                                out.data.begin() + (long)((i + 1) * out.cols)) } });
    }
    // Texts are not always valid UTF-8 (a file's bytes): replaced in the JSON, not refused.
    std::printf("%s\n", json_text(j, 1).c_str());
    return exit_ok;
}

}  // namespace

void register_embed_text(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<embed_text_options>();
    auto * cmd = app.add_subcommand("embed-text", "vectors of texts: CLIP text features or a sentence encoder's");
    cmd->add_option("texts", o->texts, "the texts");
    cmd->add_option("--file", o->texts_file, "more texts, one a line");
    cmd->add_option("--clip-model", o->clip_model, "a CLIP GGUF (tools/convert-clip): its text features");
    cmd->add_option("--sentence-model", o->sentence_model,
                    "a sentence-transformers GGUF (tools/convert-sentence): SentenceTransformer.encode's vectors");
    cmd->add_option("--npy", o->npy, "write the vectors as an (N, D) float32 .npy file instead of JSON");
    cmd->add_option("-t,--threads", o->n_threads, "CPU threads (0: all)");
    cmd->add_option("--gpu-layers", o->n_gpu_layers, "layers to offload to a GPU build (-1: all, 0: CPU only)");
    cmd->add_flag("-v,--verbose", o->verbose, "show llama.cpp's logs");
    cmd->callback([o, &exit_code] { exit_code = run_embed_text(*o); });
}

}  // namespace dior::cli
