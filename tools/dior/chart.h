// Bar charts of an evaluation: one per (dataset, aspect), mAP@R and P@1 of each method, drawn from
// one layout as SVG (pages, the report) and as PNG (cairo, for slides and papers).
#pragma once

#include "html.h"

#include <string>
#include <vector>

namespace dior::cli {

struct bar_chart {
    std::string title;  // "deepfashion · texture type"
    struct row {
        std::string label;
        double      map_r = 0, prec_1 = 0;  // x100; NaN: none
    };
    std::vector<row> rows;
};

std::vector<bar_chart> results_charts(const results_table & t);
std::string            chart_svg(const bar_chart & c);
// dior::error naming the file when it cannot be written.
void write_chart_png(const bar_chart & c, const std::string & path);

}  // namespace dior::cli
