// A dataset folder against the reference's labels: which images the labels name that are not
// there, which images are there that no label covers, and how many the reference evaluates.
#include "dior.h"

#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace dior {
namespace {

// "X.json" (a label key) -> "X.jpg", the name the image has on disk in the reference's datasets.
std::string image_name_of_key(const std::string & key) {
    const std::string suffix = ".json";
    if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return key.substr(0, key.size() - suffix.size()) + ".jpg";
    }
    return key;
}

// Names are matched as the evaluation matches them: by reference_json_name.
void compare_names(const std::map<std::string, std::string> & by_name, const std::vector<std::string> & images,
                   dataset_check_result & r) {
    std::set<std::string> have;
    for (const auto & img : images) {
        const std::string key = reference_json_name(img);
        have.insert(key);
        if (!by_name.count(key)) {
            r.extra.push_back(fs::path(img).filename().string());
        }
    }
    for (const auto & [key, label] : by_name) {
        if (!have.count(key)) {
            r.missing.push_back(image_name_of_key(key));
        }
    }
    r.expected = by_name.size();
}

}  // namespace

dataset_check_result check_dataset(const std::string & name, const std::string & datasets_dir,
                                   const label_sources & labels) {
    const dataset_info * info = find_dataset(name);
    if (!info) {
        std::string known;
        for (const auto & d : datasets()) {
            known += " " + d.name;
        }
        throw error("unknown dataset '" + name + "'; known:" + known);
    }
    dataset_check_result r;
    r.folder   = (fs::path(datasets_dir.empty() ? "datasets" : datasets_dir) / name).string();
    r.expected = info->images;
    std::error_code ec;
    if (!fs::is_directory(r.folder, ec)) {
        r.notes.push_back("no folder " + r.folder + ": run dior datasets download " + name);
        return r;
    }
    const std::vector<std::string> images = list_dataset_images(r.folder);
    r.images                              = images.size();
    for (const auto & img : images) {
        if (fs::is_regular_file(img, ec) && fs::file_size(img, ec) == 0) {
            r.notes.push_back("empty file: " + fs::path(img).filename().string());
        }
    }

    label_sources src = labels;
    src.images        = images;
    if (name == "deepfashion" || name == "movie_posters" || (name == "cars196" && !labels.cars196_labels.empty())) {
        compare_names(load_labels(name, src).front().by_name, images, r);
    } else if (name == "cub200") {
        // the labels are the names: each must have the species_NNNN_NNNN form, 100 species in all
        const auto            species = load_labels(name, src).front().by_name;
        std::set<std::string> kinds;
        for (const auto & img : images) {
            const std::string label = species.at(reference_json_name(img));
            if (label.empty()) {
                r.extra.push_back(fs::path(img).filename().string() + " (not a CUB name: SPECIES_NNNN_NNNNNN.jpg)");
            } else {
                kinds.insert(label);
            }
        }
        r.notes.push_back(std::to_string(kinds.size()) + " species (classes 101-200 are 100)");
    } else if (name == "cars196") {
        r.notes.push_back("names not checked: pass --cars196-labels FILE to check them against the labels");
    } else if (name == "synthetic_cars") {
        if (!labels.synthetic_cars_csv.empty()) {
            r.expected = load_labels(name, src).front().by_position.size();
        }
        r.notes.push_back("labels are paired with the images by position: the first " + std::to_string(r.expected) +
                          " images in name order are evaluated");
    }
    if (r.expected && r.images != r.expected && r.missing.empty() && r.extra.empty()) {
        r.notes.push_back(std::to_string(r.images) + " images, the reference evaluates " + std::to_string(r.expected));
    }
    return r;
}

}  // namespace dior
