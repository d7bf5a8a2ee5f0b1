// The reference's datasets and the aspects it embeds each with (SPEC section 3).
#include "dior.h"

#include <algorithm>
#include <filesystem>

namespace dior {

const std::vector<dataset_info> & datasets() {
    static const std::vector<dataset_info> all = {
        { "synthetic_cars", { std::nullopt, "car model", "car color", "background color" } },
        { "cars196", { std::nullopt, "car model" } },
        { "cub200", { std::nullopt, "bird species" } },
        { "deepfashion", { std::nullopt, "clothing category", "texture type", "fabric type", "fit type" } },
        { "movie_posters", { std::nullopt, "movie genre", "movie's production country" } },
    };
    return all;
}

const dataset_info * find_dataset(const std::string & name) {
    for (const auto & d : datasets()) {
        if (d.name == name) {
            return &d;
        }
    }
    return nullptr;
}

std::vector<std::string> list_dataset_images(const std::string & folder) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) {
        throw error("dataset folder not found: " + folder + " (download the images into it first)");
    }
    std::vector<std::string> out;
    // As glob + extension filter: every entry with such a name that is not a folder (a broken
    // link is listed and reported when read, never dropped silently).
    for (const auto & e : fs::directory_iterator(folder, ec)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
        std::error_code sec;
        if (!e.is_directory(sec) &&
            (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif")) {
            out.push_back(e.path().string());
        }
    }
    if (ec) {
        throw error("cannot list dataset folder " + folder + " (" + ec.message() + ")");
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace dior

namespace dior {

namespace {

// The reference's InDiReCT aspect keys (entities/indirect_texts.py) and the aspects they name.
const std::pair<const char *, const char *> k_indirect_keys[][4] = {
    { { "synthetic_cars", "" },
      { "car_model", "car model" },
      { "car_color", "car color" },
      { "background_color", "background color" } },
    { { "cub200", "" }, { "bird_species", "bird species" }, { nullptr, nullptr }, { nullptr, nullptr } },
    { { "movie_posters", "" },
      { "genre", "movie genre" },
      { "country", "movie's production country" },
      { nullptr, nullptr } },
};
const std::pair<const char *, const char *> k_deepfashion_keys[] = { { "clothing_category", "clothing category" },
                                                                     { "texture", "texture type" },
                                                                     { "fabric", "fabric type" },
                                                                     { "fit", "fit type" } };

template <typename F>
void each_key(const std::string & dataset, F f) {
    if (dataset == "deepfashion") {
        for (const auto & [key, aspect] : k_deepfashion_keys) {
            f(key, aspect);
        }
        return;
    }
    for (const auto & row : k_indirect_keys) {
        if (dataset == row[0].first) {
            for (int i = 1; i < 4; ++i) {
                if (row[i].first) {
                    f(row[i].first, row[i].second);
                }
            }
        }
    }
}

}  // namespace

std::string indirect_aspect_key(const std::string & dataset, const std::string & aspect) {
    std::string out;
    each_key(dataset, [&](const char * key, const char * name) {
        if (aspect == name) {
            out = key;
        }
    });
    if (out.empty()) {
        out = aspect;
        std::replace(out.begin(), out.end(), ' ', '_');
    }
    return out;
}

std::string indirect_aspect_name(const std::string & dataset, const std::string & key) {
    std::string out;
    each_key(dataset, [&](const char * k, const char * name) {
        if (key == k) {
            out = name;
        }
    });
    if (out.empty()) {
        out = key;
        std::replace(out.begin(), out.end(), '_', ' ');
    }
    return out;
}

}  // namespace dior
