// dior import: a tree in the reference's JSON layout -> a store, so that reference outputs can
// be evaluated and compared with dior's own.
#include "commands.h"

#include <algorithm>
#include <filesystem>
#include <fnmatch.h>
#include <memory>

namespace fs = std::filesystem;

namespace dior::cli {

namespace {

std::string read_text(const fs::path & f) {
    const auto bytes = read_file(f.string(), (int64_t)1 << 30);
    return std::string(bytes.begin(), bytes.end());
}

}  // namespace

import_result import_reference_tree(store & st, const std::string & dir, const std::string & pattern) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw error("not a folder: " + printable(dir));
    }
    std::vector<fs::path> subs;
    for (const auto & e : fs::directory_iterator(dir, ec)) {
        std::error_code dec;
        if (e.is_directory(dec) && fnmatch(pattern.c_str(), e.path().filename().c_str(), 0) == 0) {
            subs.push_back(e.path());
        }
    }
    if (ec) {
        throw error(printable(dir) + ": cannot list folder (" + ec.message() + ")");
    }
    std::sort(subs.begin(), subs.end());
    import_result out;
    for (const auto & sub : subs) {
        auto s = parse_reference_dir_name(sub.filename().string());
        if (!s) {
            std::fprintf(stderr, "skipped %s: not a setting name of the reference's layout\n",
                         printable(sub.string()).c_str());
            continue;
        }
        // The files the reference's glob("*.json") lists: hidden ones are not.
        std::vector<fs::path>    files;
        std::vector<std::string> listing;
        for (const auto & e : fs::directory_iterator(sub, ec)) {
            const std::string name = e.path().filename().string();
            if (e.path().extension() == ".json" && name[0] != '.') {
                files.push_back(e.path());
                listing.push_back(name);
            }
        }
        std::sort(files.begin(), files.end());
        // The whole setting is read and checked first, then written in one transaction: a bad
        // file leaves no half-imported setting behind.
        std::vector<store::image_vectors> rows;
        std::string                       prompt, encoder;
        try {
            for (const auto & f : files) {
                std::string p, text, enc;
                auto        v = parse_reference_json(read_text(f), f.string(), &p, &text, &enc);
                if (!rows.empty() && v.size() != rows[0].vectors[0].second.size()) {
                    throw error(printable(f.string()) + ": embedding of width " + std::to_string(v.size()) + ", but " +
                                printable(files[0].filename().string()) + " has " +
                                std::to_string(rows[0].vectors[0].second.size()));
                }
                if (rows.empty()) {
                    prompt  = p;
                    encoder = enc;
                }
                store::image_vectors row;
                row.image.path = f.filename().string();  // the vector file's name, whole (labels are matched by it)
                row.vectors    = { { 0, std::move(v) } };
                if (s->max_new_tokens > 0) {
                    row.texts = { { 0, text } };
                }
                rows.push_back(std::move(row));
            }
        } catch (const error & e) {
            std::fprintf(stderr, "error: %s\nnot imported: %s\n", e.what(), printable(sub.filename().string()).c_str());
            ++out.failed;
            continue;
        }
        if (rows.empty()) {
            continue;
        }
        s->engine = "imported";
        s->prompt = prompt;
        s->n_embd = (int)rows[0].vectors[0].second.size();
        if (s->source == "generative") {
            // The folder spells the encoder with "_" for "/"; its files keep the id itself.
            s->text_encoder = encoder.empty() ? s->text_encoder : encoder;
            // the reference embeds the whole decoded sequence; dior's answer mode says so in the name
        }
        const int64_t id = st.add_setting(*s);
        for (auto & r : rows) {
            r.vectors[0].first = id;
            for (auto & t : r.texts) {
                t.first = id;
            }
        }
        st.put_all(rows);
        out.listing[id] = std::move(listing);
        ++out.settings;
        out.vectors += rows.size();
    }
    return out;
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
        std::error_code ec;
        const bool      existed = fs::exists(o->db, ec);
        import_result   r;
        {
            auto st = store::open(o->db);
            try {
                r = import_reference_tree(*st, o->dir, o->pattern);
            } catch (...) {
                st.reset();
                if (!existed) {  // no empty store left behind
                    for (const char * ext : { "", "-wal", "-shm" }) {
                        fs::remove(o->db + ext, ec);
                    }
                }
                throw;
            }
        }
        if (r.settings == 0 && !existed) {
            for (const char * ext : { "", "-wal", "-shm" }) {
                fs::remove(o->db + ext, ec);
            }
        }
        std::fprintf(stderr, "imported %zu settings, %zu vectors into %s%s\n", r.settings, r.vectors, o->db.c_str(),
                     r.failed ? (" (" + std::to_string(r.failed) + " settings not imported, see above)").c_str() : "");
        exit_code = r.settings == 0 ? exit_fatal : r.failed ? exit_partial : exit_ok;
    });
}

}  // namespace dior::cli
