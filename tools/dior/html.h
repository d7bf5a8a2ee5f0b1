// Pieces of HTML that `dior report` and `dior serve` share: escaping, thumbnails as data URIs (a
// placeholder where an image is missing or unreadable, never a broken page), the evaluation table
// in the paper's layout (its charts: chart.h).
#pragma once

#include "dior.h"

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dior::cli {

std::string html_escape(const std::string & text);
std::string base64(const std::vector<uint8_t> & bytes);

// A JPEG thumbnail of an image file (longer side max_side), or an SVG placeholder saying why there
// is none ("missing", "unreadable").
struct thumbnail_image {
    std::vector<uint8_t> bytes;
    std::string          mime;  // "image/jpeg" or "image/svg+xml"
    bool                 placeholder = false;
};
thumbnail_image make_thumbnail(const std::string & path, int max_side, const image_limits & limits = {});

// <img> of the image file's thumbnail, or of a grey placeholder saying why there is none.
std::string thumbnail_img(const std::string & path, int max_side, const std::string & title);

// One evaluated setting, as `dior eval -o DIR` writes it (DIR/<setting>.json).
struct eval_result {
    std::string                setting, dataset, model_id, prompt_type, source;
    std::string                row_order;  // "reference" or "sorted": the order the rows were scored in
    std::optional<std::string> condition;
    int                        layer = -1, token = -1;
    struct scores {
        double map_r = 0, prec_1 = 0;  // x100, as the reference prints
        size_t images = 0;
        double nmi = NAN, ami = NAN;  // with the reference's k-means seed
        // NMI over further k-means seeds (dior eval --kmeans-seeds): how much the start decides
        double nmi_mean = NAN, nmi_min = NAN, nmi_max = NAN;
        size_t nmi_seeds = 0;
    };
    std::map<std::string, scores> by_aspect;
};
// Every *.json of the folder that holds an evaluation (summary.csv and others are skipped); a file
// that is not one is reported on stderr and left out. dior::error when the folder is not there.
std::vector<eval_result> load_eval_dir(const std::string & dir);

// The paper's layout: a row per method (method, model, prompt type, layer, token), a column per
// (dataset, aspect), each cell "mAP@R / P@1" of the setting made for that aspect (a conditional
// setting) or of the method's unconditional setting evaluated on it.
struct results_table {
    struct column {
        std::string dataset, aspect;
    };
    bool                                                     all_reference_order = true;
    std::vector<std::string>                                 rows;
    std::vector<column>                                      columns;
    std::map<std::pair<size_t, size_t>, eval_result::scores> cells;  // (row, column)
};
results_table make_results_table(const std::vector<eval_result> & results);
std::string   format_score(double v);  // "32.4"; "–" for NaN
std::string   results_table_html(const results_table & t);
// The same cells' NMI / AMI, with NMI's range over k-means seeds where the evaluation has one; a
// range wider than 0.05 is marked: that score is an accident of where k-means started.
std::string clustering_table_html(const results_table & t);

}  // namespace dior::cli
