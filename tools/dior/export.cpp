// dior export: a store's settings as .npy matrices or in the reference's JSON layout.
#include "commands.h"
#include "dior_json.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {
namespace {

const stored_setting & find_setting(const std::vector<stored_setting> & all, int64_t id) {
    for (const auto & s : all) {
        if (s.id == id) {
            return s;
        }
    }
    throw error("no setting " + std::to_string(id) + " in the store");
}

json setting_json(const stored_setting & r) {
    const setting & s = r.s;
    json            j = { { "id", r.id },
                          { "dataset", s.dataset },
                          { "model_id", s.model_id },
                          { "model_sha256", s.model_sha256 },
                          { "mmproj_sha256", s.mmproj_sha256 },
                          { "engine", s.engine },
                          { "prompt_type", s.prompt_type },
                          { "condition", s.condition ? json(*s.condition) : json(nullptr) },
                          { "prompt", s.prompt },
                          { "layer", s.layer },
                          { "token", s.token },
                          { "image_max_size", s.image_max_size },
                          { "positions", s.positions },
                          { "source", s.source },
                          { "engine_options", s.engine_options },
                          { "n_embd", s.n_embd } };
    if (s.components) {
        j["components"] = s.components;
    }
    if (s.max_new_tokens) {
        j["generation"] = { { "max_new_tokens", s.max_new_tokens },
                            { "temperature", s.temperature },
                            { "seed", s.seed },
                            { "repeat_penalty", s.repeat_penalty } };
    }
    if (!s.text_encoder.empty()) {
        j["text_encoder"]        = s.text_encoder;
        j["text_encoder_sha256"] = s.text_encoder_sha256;
        j["embedded_text"]       = s.text_mode;
    }
    return j;
}

void write_text(const fs::path & path, const std::string & text) {
    const fs::path tmp = path.string() + ".tmp";
    {
        std::ofstream f(tmp);
        f << text;
        if (!f) {
            throw error("cannot write " + tmp.string() + " (disk full or not writable?)");
        }
    }
    fs::rename(tmp, path);
}

void make_dir(const fs::path & dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        throw error("cannot create folder " + printable(dir.string()) + ": " + ec.message());
    }
}

// An export folder written whole or not at all: everything goes to a hidden folder beside it
// first, and commit() moves it into place (one rename when the folder is new; else each file or
// setting folder replaced by its new version). An export that stops before commit() leaves the
// folder as it was and removes its staging folder.
class staged_folder {
  public:
    explicit staged_folder(const std::string & target) : target_(fs::absolute(target).lexically_normal()) {
        if (target_.filename().empty()) {  // "out/" or ".": the folder itself
            target_ = target_.parent_path();
        }
        stage_ = target_.parent_path() / ("." + target_.filename().string() + ".partial-" + std::to_string(getpid()));
        std::error_code ec;
        fs::remove_all(stage_, ec);
        make_dir(stage_);
    }

    ~staged_folder() {
        std::error_code ec;
        fs::remove_all(stage_, ec);
    }

    staged_folder(const staged_folder &)             = delete;
    staged_folder & operator=(const staged_folder &) = delete;

    const fs::path & path() const { return stage_; }

    void commit() {
        std::error_code ec;
        if (!fs::exists(target_, ec)) {
            fs::rename(stage_, target_);
            return;
        }
        if (!fs::is_directory(target_, ec)) {
            throw error(printable(target_.string()) + " exists and is not a folder");
        }
        for (const auto & e : fs::directory_iterator(stage_)) {
            const fs::path to = target_ / e.path().filename();
            if (fs::is_directory(to, ec) && !fs::is_symlink(to, ec)) {
                fs::remove_all(to);
            }
            fs::rename(e.path(), to);
        }
    }

  private:
    fs::path target_, stage_;
};

// Unique file names: the reference's name, with "-s<id>" added when two settings share it.
std::map<int64_t, std::string> names_of(const std::vector<stored_setting> & all, const std::vector<int64_t> & ids) {
    std::map<std::string, int>     count;
    std::map<int64_t, std::string> out;
    for (int64_t id : ids) {
        ++count[reference_dir_name(find_setting(all, id).s)];
    }
    for (int64_t id : ids) {
        const std::string n = reference_dir_name(find_setting(all, id).s);
        out[id]             = count[n] > 1 ? n + "-s" + std::to_string(id) : n;
    }
    return out;
}

}  // namespace

void export_npy(const store & st, const std::vector<int64_t> & ids, const std::string & out_dir) {
    staged_folder         stage(out_dir);
    const fs::path &      dir      = stage.path();
    const auto            all      = st.settings();
    const auto            names    = names_of(all, ids);
    json                  settings = json::array();
    std::set<std::string> exported;
    for (int64_t id : ids) {
        std::vector<std::string> paths, texts;
        const matrix             m    = st.vectors(id, &paths, &texts);
        const std::string        name = names.at(id);
        exported.insert(paths.begin(), paths.end());
        write_npy((dir / (name + ".npy")).string(), m);
        std::string rows;
        for (const auto & p : paths) {
            rows += p + "\n";
        }
        write_text(dir / (name + ".rows.txt"), rows);
        json j = setting_json(find_setting(all, id));
        if (find_setting(all, id).s.max_new_tokens) {  // the generated texts, one per row
            write_text(dir / (name + ".texts.json"), json_text(json(texts), 1) + "\n");
            j["texts"] = name + ".texts.json";
        }
        j["file"]  = name + ".npy";
        j["rows"]  = name + ".rows.txt";
        j["shape"] = { m.rows, m.cols };
        settings.push_back(j);
    }
    json images = json::array(), failed = json::array();
    for (const auto & i : st.images()) {  // the images of the exported settings only
        if (exported.count(i.path)) {
            images.push_back(
                { { "path", i.path }, { "width", i.width }, { "height", i.height }, { "sha256", i.sha256 } });
        }
    }
    for (const auto & f : st.failures()) {
        failed.push_back({ { "path", f.path }, { "error", f.reason }, { "time", f.time } });
    }
    const json manifest = { { "tool", std::string("dior.cpp ") + DIOR_VERSION },
                            { "settings", settings },
                            { "images", images },
                            { "failed", failed } };
    write_text(dir / "manifest.json", json_text(manifest, 2) + "\n");
    stage.commit();
}

void export_json(const store & st, const std::vector<int64_t> & ids, const std::string & out_dir) {
    staged_folder    stage(out_dir);
    const fs::path & dir   = stage.path();
    const auto       all   = st.settings();
    const auto       names = names_of(all, ids);
    for (int64_t id : ids) {
        const setting &          s = find_setting(all, id).s;
        std::vector<std::string> paths, texts;
        const matrix             m   = st.vectors(id, &paths, &texts);
        const fs::path           sub = dir / names.at(id);
        make_dir(sub);
        std::set<std::string> files;
        for (size_t r = 0; r < m.rows; ++r) {
            const std::string file = reference_json_name(paths[r]);
            if (!files.insert(file).second) {
                throw error("two images named " + printable(file) + " in setting " + printable(names.at(id)) +
                            ": the reference layout keys files by name; export them separately");
            }
            json emb = json::array();
            for (size_t c = 0; c < m.cols; ++c) {
                emb.push_back((double)m.data[r * m.cols + c]);  // shortest text that reads back to the same float
            }
            json j = { { "embedding", emb }, { "source", s.source } };
            if (s.source == "indirect") {  // the reference's InDiReCT files
                j["clip_model"]     = s.model_id;
                j["num_components"] = s.components;
                j["aspect"]         = indirect_aspect_key(s.dataset, s.condition.value_or(""));
            } else if (s.source != "clip") {
                j["prompt"] = s.prompt;
            }
            if (s.max_new_tokens) {  // the generative baseline's files (and dior's generated sources)
                j["generated_text"] = texts[r];
            }
            if (s.source == "generative") {
                j["text_encoder"] = s.text_encoder;
            }
            write_text(sub / file, json_text(j));
        }
    }
    stage.commit();
}

void register_export(CLI::App & app, int & exit_code) {
    struct options {
        std::string          db = "embeddings.db", npy, json_dir;
        std::vector<int64_t> ids;
    };
    auto   o = std::make_shared<options>();
    auto * cmd =
        app.add_subcommand("export", "write a store's vectors as .npy files or in the reference's JSON layout");
    cmd->add_option("--db", o->db, "the store");
    cmd->add_option("--npy", o->npy, "folder for .npy matrices, their row names and manifest.json");
    cmd->add_option("--json", o->json_dir, "folder for the reference's layout: <setting>/<image stem>.json");
    cmd->add_option("--setting", o->ids, "only these setting ids (see dior status); default: all")
        ->allow_extra_args(false);
    cmd->callback([o, &exit_code] {
        if (o->npy.empty() && o->json_dir.empty()) {
            throw error("nothing to do: give --npy DIR and/or --json DIR");
        }
        if (!fs::exists(o->db)) {
            throw error("store not found: " + o->db);
        }
        auto                 st  = store::open(o->db, true);
        std::vector<int64_t> ids = o->ids;
        if (ids.empty()) {
            for (const auto & s : st->settings()) {
                ids.push_back(s.id);
            }
        }
        if (!o->npy.empty()) {
            export_npy(*st, ids, o->npy);
        }
        if (!o->json_dir.empty()) {
            export_json(*st, ids, o->json_dir);
        }
        std::fprintf(stderr, "exported %zu settings\n", ids.size());
        exit_code = exit_ok;
    });
}

}  // namespace dior::cli
