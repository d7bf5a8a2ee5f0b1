// The reference's datasets and the aspects it embeds each with (SPEC section 3).
#include "dior.h"

#include <algorithm>
#include <filesystem>

namespace dior {

const std::vector<dataset_info> & datasets() {
    static const std::vector<dataset_info> all = {
        { "synthetic_cars", { std::nullopt, "car model", "car color", "background color" }, 1000 },
        { "cars196", { std::nullopt, "car model" }, 8131 },
        { "cub200", { std::nullopt, "bird species" }, 5924 },
        { "deepfashion", { std::nullopt, "clothing category", "texture type", "fabric type", "fit type" }, 4000 },
        { "movie_posters", { std::nullopt, "movie genre", "movie's production country" }, 8052 },
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
struct indirect_key {
    const char *dataset, *key, *aspect;
};

const indirect_key k_indirect_keys[] = {
    { "synthetic_cars", "car_model", "car model" },
    { "synthetic_cars", "car_color", "car color" },
    { "synthetic_cars", "background_color", "background color" },
    { "cub200", "bird_species", "bird species" },
    { "movie_posters", "genre", "movie genre" },
    { "movie_posters", "country", "movie's production country" },
    { "deepfashion", "clothing_category", "clothing category" },
    { "deepfashion", "texture", "texture type" },
    { "deepfashion", "fabric", "fabric type" },
    { "deepfashion", "fit", "fit type" },
};

// Other aspects: spaces <-> underscores.
std::string replaced(std::string s, char from, char to) {
    std::replace(s.begin(), s.end(), from, to);
    return s;
}

}  // namespace

std::string indirect_aspect_key(const std::string & dataset, const std::string & aspect) {
    for (const auto & k : k_indirect_keys) {
        if (dataset == k.dataset && aspect == k.aspect) {
            return k.key;
        }
    }
    return replaced(aspect, ' ', '_');
}

std::string indirect_aspect_name(const std::string & dataset, const std::string & key) {
    for (const auto & k : k_indirect_keys) {
        if (dataset == k.dataset && key == k.key) {
            return k.aspect;
        }
    }
    return replaced(key, '_', ' ');
}

}  // namespace dior
