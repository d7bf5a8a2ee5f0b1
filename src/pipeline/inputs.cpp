// Listing what a run embeds: image inputs, conditions, layers; and the engine options recorded
// with every setting.
#include "dior.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace dior {

std::string engine_options_text(const model_params & p) {
    // Settings written before the vision encoder had flash attention have no "vfa": they ran without.
    // The slow (Pillow) processor and the vision encoder's exact attention write no word of their
    // own: they were the only choices before, so older stores keep resuming with them.
    return std::string("kv=") + (p.kv_f16 ? "f16" : "f32") + " fa=" + (p.flash_attn ? "1" : "0") +
           (p.vision_flash_attn ? " vfa=1" : "") +
           (p.processor == image_processor::fast   ? " processor=fast"
            : p.processor == image_processor::mtmd ? " resize=mtmd"
                                                   : "");
}

namespace {

bool is_image_name(const fs::path & p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    static const char * exts[] = { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga",
                                   ".psd", ".hdr", ".pic",  ".ppm", ".pgm", ".pnm" };
    return std::any_of(std::begin(exts), std::end(exts), [&](const char * e) { return ext == e; });
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
        s.pop_back();
    }
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) {
        ++i;
    }
    return s.substr(i);
}

std::vector<std::string> read_lines(const std::string & path, const char * what) {
    std::vector<uint8_t> bytes;
    try {
        bytes = read_file(path, (int64_t)1 << 30);  // a regular file only: a FIFO would block
    } catch (const error & e) {
        throw error(std::string("cannot read ") + what + ": " + e.what());
    }
    std::stringstream        f(std::string(bytes.begin(), bytes.end()));
    std::vector<std::string> out;
    for (std::string line; std::getline(f, line);) {
        line = trim(line);
        if (!line.empty() && line[0] != '#') {
            out.push_back(line);
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> collect_images(const std::vector<std::string> & paths, const std::string & list_file) {
    std::vector<std::string> out;
    for (const auto & p : paths) {
        std::error_code ec;
        if (!p.empty() && fs::is_directory(p, ec)) {
            // Every entry with an image's name that is not a folder: a dangling link, a link loop or
            // a FIFO named *.jpg is listed too, and reported on its own line when it is read.
            std::vector<std::string> found;
            for (const auto & e : fs::directory_iterator(p, ec)) {
                std::error_code sec;
                if (is_image_name(e.path()) && !e.is_directory(sec)) {
                    found.push_back(e.path().string());
                }
            }
            if (ec) {
                throw error(printable(p) + ": cannot list folder (" + ec.message() + ")");
            }
            std::sort(found.begin(), found.end());
            out.insert(out.end(), found.begin(), found.end());
        } else {
            out.push_back(p);  // a missing file is reported when it is loaded
        }
    }
    if (!list_file.empty()) {
        const fs::path base = fs::path(list_file).parent_path();
        for (const auto & line : read_lines(list_file, "image list")) {
            const fs::path p(line);
            out.push_back(p.is_absolute() || base.empty() ? line : (base / p).string());
        }
    }
    return out;
}

std::vector<std::optional<std::string>> collect_conditions(const std::vector<std::string> & conditions,
                                                           const std::string & conditions_file, bool unconditional) {
    std::vector<std::optional<std::string>> out;
    if (unconditional) {
        out.emplace_back(std::nullopt);
    }
    for (const auto & c : conditions) {
        out.emplace_back(c);
    }
    if (!conditions_file.empty()) {
        for (const auto & c : read_lines(conditions_file, "conditions file")) {
            out.emplace_back(c);
        }
    }
    if (out.empty()) {
        out.emplace_back(std::nullopt);
    }
    return out;
}

std::vector<int> parse_layers(const std::vector<std::string> & specs, const model & m) {
    std::vector<int> layers;
    for (const auto & spec : specs) {
        std::stringstream ss(spec);
        for (std::string item; std::getline(ss, item, ',');) {
            item = trim(item);
            if (item == "all") {
                const auto all = m.all_layers();
                layers.insert(layers.end(), all.begin(), all.end());
                continue;
            }
            try {
                size_t    used = 0;
                const int l    = std::stoi(item, &used);
                if (used != item.size()) {
                    throw std::invalid_argument(item);
                }
                layers.push_back(l);
            } catch (const std::exception &) {
                throw error("--layer " + item + ": expected an integer or 'all'");
            }
        }
    }
    if (layers.empty()) {
        layers.push_back(-1);
    }
    return layers;
}

}  // namespace dior
