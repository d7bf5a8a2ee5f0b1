#include "chart.h"

#include <algorithm>
#include <cairo.h>
#include <cmath>
#include <cstdio>

namespace dior::cli {
namespace {

// One layout for both renderers, in pixels.
struct layout {
    static constexpr int label_w = 330, bar_w = 300, bar_h = 12, gap = 10, top = 44;
    int                  width = 0, height = 0;

    explicit layout(const bar_chart & c)
        : width(label_w + bar_w + 60), height(top + (int)c.rows.size() * (2 * bar_h + gap) + 16) {}

    static int row_y(size_t r) { return top + (int)r * (2 * bar_h + gap); }
    static int bar_y(size_t r, int b) { return row_y(r) + b * bar_h; }
    static int bar_len(double v) {
        return (int)std::lround((std::isnan(v) ? 0 : std::clamp(v, 0.0, 100.0)) / 100.0 * bar_w);
    }
    static double value(const bar_chart::row & r, int b) { return b == 0 ? r.map_r : r.prec_1; }
};

constexpr const char * k_names[2]  = { "mAP@R", "P@1" };
constexpr const char * k_colors[2] = { "#3b6ea5", "#e08a2c" };
constexpr double       k_rgb[2][3] = { { 0x3b / 255.0, 0x6e / 255.0, 0xa5 / 255.0 },
                                       { 0xe0 / 255.0, 0x8a / 255.0, 0x2c / 255.0 } };

}  // namespace

std::vector<bar_chart> results_charts(const results_table & t) {
    std::vector<bar_chart> out;
    for (size_t c = 0; c < t.columns.size(); ++c) {
        bar_chart ch;
        ch.title = t.columns[c].dataset + " · " + t.columns[c].aspect;
        for (size_t r = 0; r < t.rows.size(); ++r) {
            const auto it = t.cells.find({ r, c });
            if (it != t.cells.end()) {
                ch.rows.push_back({ t.rows[r], it->second.map_r, it->second.prec_1 });
            }
        }
        out.push_back(std::move(ch));
    }
    return out;
}

std::string chart_svg(const bar_chart & c) {
    const layout L(c);
    const auto   n = [](int v) { return std::to_string(v); };
    std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + n(L.width) + "\" height=\"" +
                    n(L.height) + "\" viewBox=\"0 0 " + n(L.width) + " " + n(L.height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
                    "fill=\"white\"/>\n<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" +
                    html_escape(c.title) + "</text>\n";
    for (int b = 0; b < 2; ++b) {  // legend
        s += "<rect x=\"" + n(layout::label_w + 70 * b) + "\" y=\"26\" width=\"10\" height=\"10\" fill=\"" +
             k_colors[b] + "\"/><text x=\"" + n(layout::label_w + 70 * b + 14) + "\" y=\"35\">" + k_names[b] +
             "</text>\n";
    }
    for (size_t r = 0; r < c.rows.size(); ++r) {
        s += "<text x=\"" + n(layout::label_w - 6) + "\" y=\"" + n(layout::row_y(r) + layout::bar_h + 4) +
             "\" text-anchor=\"end\">" + html_escape(c.rows[r].label) + "</text>\n";
        for (int b = 0; b < 2; ++b) {
            const double v = layout::value(c.rows[r], b);
            const int    w = layout::bar_len(v);
            s += "<rect class=\"bar\" x=\"" + n(layout::label_w) + "\" y=\"" + n(layout::bar_y(r, b)) + "\" width=\"" +
                 n(w) + "\" height=\"" + n(layout::bar_h - 1) + "\" fill=\"" + k_colors[b] + "\"/><text x=\"" +
                 n(layout::label_w + w + 4) + "\" y=\"" + n(layout::bar_y(r, b) + layout::bar_h - 2) +
                 "\" font-size=\"10\">" + format_score(v) + "</text>\n";
        }
    }
    return s + "</svg>\n";
}

void write_chart_png(const bar_chart & c, const std::string & path) {
    const layout      L(c);
    const int         scale = 2;  // twice the SVG's pixels, sharp on slides
    cairo_surface_t * surf  = cairo_image_surface_create(CAIRO_FORMAT_RGB24, L.width * scale, L.height * scale);
    cairo_t *         cr    = cairo_create(surf);
    cairo_scale(cr, scale, scale);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    const auto text = [&](double x, double y, const std::string & t, double size, bool bold, bool right) {
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                               bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, size);
        cairo_text_extents_t e;
        cairo_text_extents(cr, t.c_str(), &e);
        cairo_set_source_rgb(cr, 0.13, 0.13, 0.13);
        cairo_move_to(cr, right ? x - e.x_advance : x, y);
        cairo_show_text(cr, t.c_str());
    };
    text(8, 18, c.title, 14, true, false);
    for (int b = 0; b < 2; ++b) {
        cairo_set_source_rgb(cr, k_rgb[b][0], k_rgb[b][1], k_rgb[b][2]);
        cairo_rectangle(cr, layout::label_w + 70 * b, 26, 10, 10);
        cairo_fill(cr);
        text(layout::label_w + 70 * b + 14, 35, k_names[b], 12, false, false);
    }
    for (size_t r = 0; r < c.rows.size(); ++r) {
        text(layout::label_w - 6, layout::row_y(r) + layout::bar_h + 4, c.rows[r].label, 12, false, true);
        for (int b = 0; b < 2; ++b) {
            const double v = layout::value(c.rows[r], b);
            const int    w = layout::bar_len(v);
            cairo_set_source_rgb(cr, k_rgb[b][0], k_rgb[b][1], k_rgb[b][2]);
            cairo_rectangle(cr, layout::label_w, layout::bar_y(r, b), w, layout::bar_h - 1);
            cairo_fill(cr);
            text(layout::label_w + w + 4, layout::bar_y(r, b) + layout::bar_h - 2, format_score(v), 10, false, false);
        }
    }
    cairo_destroy(cr);
    const cairo_status_t st = cairo_surface_write_to_png(surf, path.c_str());
    cairo_surface_destroy(surf);
    if (st != CAIRO_STATUS_SUCCESS) {
        throw error("cannot write " + printable(path) + ": " + cairo_status_to_string(st));
    }
}

}  // namespace dior::cli
