// Which rows of a setting are scored for one aspect, and in which order: as the reference's
// evaluate.py reads them, or by name. The order matters: faiss' k-means takes its starting centres
// by row position (NMI, AMI), and exact distance ties are broken by row index (P@1, mAP@R).
#include "dior.h"

#include <algorithm>
#include <map>

namespace dior {

namespace {

// Image indices in the order of their vector file names (paths break a tie).
std::vector<size_t> name_order(const std::vector<std::string> & images) {
    std::vector<std::string> names(images.size());
    std::vector<size_t>      idx(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
        names[i] = reference_json_name(images[i]);
        idx[i]   = i;
    }
    std::sort(idx.begin(), idx.end(),
              [&](size_t a, size_t b) { return names[a] != names[b] ? names[a] < names[b] : images[a] < images[b]; });
    return idx;
}

// The metadata's names that no image has.
std::vector<std::string> missing_names(const aspect_labels & labels, const std::map<std::string, size_t> & index) {
    std::vector<std::string> out;
    for (const auto & row : labels.rows) {
        if (!index.count(row.first)) {
            out.push_back(row.first);
        }
    }
    return out;
}

}  // namespace

scored_rows rows_to_score(const aspect_labels & labels, const std::vector<std::string> & images, row_order order,
                          bool listed) {
    scored_rows                   out;
    std::map<std::string, size_t> index;  // vector file name -> first image of that name
    for (size_t i = 0; i < images.size(); ++i) {
        index.emplace(reference_json_name(images[i]), i);
    }
    out.missing = missing_names(labels, index);

    if (order == row_order::reference && !labels.rows.empty()) {
        // evaluate.py walks the metadata and opens the vector file each row names.
        std::vector<bool> used(images.size(), false);
        for (const auto & [name, label] : labels.rows) {
            const auto it = index.find(name);
            if (it != index.end()) {
                out.rows.push_back(it->second);
                out.labels.push_back(label);
                used[it->second] = true;
            }
        }
        for (size_t i = 0; i < images.size(); ++i) {
            if (!used[i]) {
                out.unlabeled.push_back(images[i]);
            }
        }
        out.order        = "metadata row order (" + labels.rows_from + "), as the reference reads it";
        out.as_reference = true;
        return out;
    }

    std::vector<size_t> idx;
    if (order == row_order::reference && labels.by_position.empty() && listed) {
        for (size_t i = 0; i < images.size(); ++i) {
            idx.push_back(i);
        }
        out.order        = "folder listing order, as the reference's glob reads it (unsorted)";
        out.as_reference = true;
    } else {
        idx = name_order(images);
        if (order == row_order::sorted) {
            out.order = "vector file name order";
        } else if (!labels.by_position.empty()) {
            out.order        = "vector file name order, as the reference pairs the files with the metadata's rows";
            out.as_reference = true;
        } else {
            out.order =
                "vector file name order: a store keeps no folder order (the reference's glob lists a folder "
                "unsorted; to score a tree of the reference's layout in its order, give it with --embedding-dir)";
        }
    }
    const auto found = label_images(labels, images);
    for (size_t i : idx) {
        if (found[i]) {
            out.rows.push_back(i);
            out.labels.push_back(*found[i]);
        } else {
            out.unlabeled.push_back(images[i]);
        }
    }
    return out;
}

}  // namespace dior
