// dior import: a tree in the reference's JSON layout -> a store, so that reference outputs can
// be evaluated and compared with dior's own.
#include "commands.h"

#include <algorithm>
#include <filesystem>
#include <fnmatch.h>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {

size_t import_reference_tree(store & st, const std::string & dir, const std::string & pattern) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw error("not a folder: " + dir);
    }
    std::vector<fs::path> subs;
    for (const auto & e : fs::directory_iterator(dir)) {
        if (e.is_directory() && fnmatch(pattern.c_str(), e.path().filename().c_str(), 0) == 0) {
            subs.push_back(e.path());
        }
    }
    std::sort(subs.begin(), subs.end());
    size_t n_settings = 0;
    for (const auto & sub : subs) {
        auto s = parse_reference_dir_name(sub.filename().string());
        if (!s) {
            std::fprintf(stderr, "skipped %s: not a DIOR setting name\n", sub.string().c_str());
            continue;
        }
        std::vector<fs::path> files;
        for (const auto & e : fs::directory_iterator(sub)) {
            if (e.path().extension() == ".json") {
                files.push_back(e.path());
            }
        }
        std::sort(files.begin(), files.end());
        int64_t id = -1;
        for (const auto & f : files) {
            std::ifstream in(f);
            json          j;
            try {
                j = json::parse(in);
            } catch (const std::exception & e) {
                throw error(f.string() + ": not valid JSON (" + e.what() + ")");
            }
            if (!j.contains("embedding") || !j["embedding"].is_array()) {
                throw error(f.string() + ": no \"embedding\" array");
            }
            std::vector<float> v;
            for (const auto & x : j["embedding"]) {
                v.push_back((float)x.get<double>());
            }
            if (id < 0) {
                s->engine = "imported";
                s->prompt = j.value("prompt", "");
                s->n_embd = (int)v.size();
                id        = st.add_setting(*s);
                ++n_settings;
            }
            store::image_info info;
            info.path = f.filename().string();  // the vector file's name, whole (labels are matched by it)
            st.put(info, { { id, std::move(v) } });
        }
    }
    return n_settings;
}

void register_import(CLI::App & app, int & exit_code) {
    struct options {
        std::string db = "embeddings.db", dir, pattern = "*";
    };
    auto   o   = std::make_shared<options>();
    auto * cmd = app.add_subcommand("import", "read a tree in the reference's JSON layout into a store");
    cmd->add_option("dir", o->dir, "folder holding <setting>/<image stem>.json")->required();
    cmd->add_option("--db", o->db, "the store (created if missing)");
    cmd->add_option("--setting-pattern", o->pattern, "only setting folders matching this glob");
    cmd->callback([o, &exit_code] {
        auto         st = store::open(o->db);
        const size_t n  = import_reference_tree(*st, o->dir, o->pattern);
        size_t       v  = 0;
        for (const auto & s : st->settings()) {
            v += (size_t)s.n_vectors;
        }
        std::fprintf(stderr, "imported %zu settings, %zu vectors into %s\n", n, v, o->db.c_str());
        exit_code = exit_ok;
    });
}

}  // namespace dior::cli
