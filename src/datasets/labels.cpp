// Labels of the reference's five datasets (SPEC sections 3 and 6), matched to images by the name of
// their vector files, or by position (synthetic_cars), as the reference's evaluation does.
#include "dior.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace dior {
namespace {

// One CSV/TSV record; quotes as in RFC 4180 (deepfashion has a quoted file name with a comma).
std::vector<std::string> split_record(const std::string & line, char sep) {
    std::vector<std::string> out(1);
    bool                     quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                out.back().push_back('"');
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                out.back().push_back(c);
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == sep) {
            out.emplace_back();
        } else if (c != '\r') {
            out.back().push_back(c);
        }
    }
    return out;
}

struct table {
    std::vector<std::string>              header;
    std::vector<std::vector<std::string>> rows;

    int column(const std::vector<std::string> & names) const {
        for (const auto & n : names) {
            for (size_t i = 0; i < header.size(); ++i) {
                if (header[i] == n) {
                    return (int)i;
                }
            }
        }
        return -1;
    }
};

table read_table(const std::string & path, char sep, const std::string & what_to_do) {
    std::ifstream f(path);
    if (!f) {
        throw error("label file not found: " + path + "; " + what_to_do);
    }
    table t;
    for (std::string line; std::getline(f, line);) {
        if (line.empty() || line == "\r") {
            continue;
        }
        auto rec = split_record(line, sep);
        if (t.header.empty()) {
            t.header = std::move(rec);
        } else {
            t.rows.push_back(std::move(rec));
        }
    }
    return t;
}

// pandas.read_csv's default na_values: such a cell becomes NaN, and all NaN cells of a column
// form one label class in the reference.
bool pandas_na(const std::string & cell) {
    static const char * const na[] = { "",     "#N/A",   "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN",
                                       "-nan", "1.#IND", "1.#QNAN",  "<NA>", "N/A",     "NA",       "NULL",
                                       "NaN",  "None",   "n/a",      "nan",  "null" };
    for (const char * v : na) {
        if (cell == v) {
            return true;
        }
    }
    return false;
}

std::string label_cell(const std::string & cell) {
    return pandas_na(cell) ? std::string(k_missing_label) : cell;
}

// Python's str.replace(old, new): every occurrence.
std::string replace_all(std::string s, const std::string & from, const std::string & to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

std::string header_list(const table & t) {
    std::string s;
    for (const auto & h : t.header) {
        s += (s.empty() ? "" : ", ") + h;
    }
    return s;
}

int required_column(const table & t, const std::vector<std::string> & names, const std::string & path) {
    const int c = t.column(names);
    if (c < 0) {
        std::string want;
        for (const auto & n : names) {
            want += (want.empty() ? "" : " or ") + n;
        }
        throw error(path + ": no column " + want + " (columns: " + header_list(t) + ")");
    }
    return c;
}

// Columns of a metadata table -> aspects, keyed by key_of(key cell).
template <typename KeyFn>
std::vector<aspect_labels> from_table(const std::string & path, char sep, const std::string & key_column,
                                      const std::vector<std::pair<std::string, std::string>> & aspect_columns,
                                      const std::string & what_to_do, KeyFn key_of) {
    const table                t   = read_table(path, sep, what_to_do);
    const int                  key = required_column(t, { key_column }, path);
    std::vector<aspect_labels> out;
    for (const auto & [aspect, column] : aspect_columns) {
        const int     c = required_column(t, { column }, path);
        aspect_labels a;
        a.aspect    = aspect;
        a.rows_from = fs::path(path).filename().string();
        for (const auto & row : t.rows) {
            if ((int)row.size() > std::max(key, c)) {
                a.rows.emplace_back(key_of(row[key]), label_cell(row[c]));
                a.by_name[a.rows.back().first] = a.rows.back().second;
            }
        }
        out.push_back(std::move(a));
    }
    return out;
}

struct named_color {
    const char * name;
    uint32_t     rgb;
};

// CSS 2.1: the 16 HTML 4 colours and orange, in the order of webcolors 1.5's CSS21_HEX_TO_NAMES
// (the order decides ties: the reference keeps the later name at equal distance).
const std::array<named_color, 17> k_css21 = { {
    { "aqua", 0x00ffff },
    { "black", 0x000000 },
    { "blue", 0x0000ff },
    { "fuchsia", 0xff00ff },
    { "green", 0x008000 },
    { "gray", 0x808080 },
    { "lime", 0x00ff00 },
    { "maroon", 0x800000 },
    { "navy", 0x000080 },
    { "olive", 0x808000 },
    { "purple", 0x800080 },
    { "red", 0xff0000 },
    { "silver", 0xc0c0c0 },
    { "teal", 0x008080 },
    { "white", 0xffffff },
    { "yellow", 0xffff00 },
    { "orange", 0xffa500 },
} };

// CSS3 (SVG 1.1) colour keywords, one name per value as webcolors 1.5 answers rgb_to_name(spec="css3")
// on Python 3.7+: its reversed table keeps the last name of each value, so "grey" spellings, "cyan"
// and "magenta" (generated from webcolors 1.5's CSS3_HEX_TO_NAMES).
const named_color k_css3[] = {
    { "aliceblue", 0xf0f8ff },
    { "antiquewhite", 0xfaebd7 },
    { "aquamarine", 0x7fffd4 },
    { "azure", 0xf0ffff },
    { "beige", 0xf5f5dc },
    { "bisque", 0xffe4c4 },
    { "black", 0x000000 },
    { "blanchedalmond", 0xffebcd },
    { "blue", 0x0000ff },
    { "blueviolet", 0x8a2be2 },
    { "brown", 0xa52a2a },
    { "burlywood", 0xdeb887 },
    { "cadetblue", 0x5f9ea0 },
    { "chartreuse", 0x7fff00 },
    { "chocolate", 0xd2691e },
    { "coral", 0xff7f50 },
    { "cornflowerblue", 0x6495ed },
    { "cornsilk", 0xfff8dc },
    { "crimson", 0xdc143c },
    { "cyan", 0x00ffff },
    { "darkblue", 0x00008b },
    { "darkcyan", 0x008b8b },
    { "darkgoldenrod", 0xb8860b },
    { "darkgreen", 0x006400 },
    { "darkgrey", 0xa9a9a9 },
    { "darkkhaki", 0xbdb76b },
    { "darkmagenta", 0x8b008b },
    { "darkolivegreen", 0x556b2f },
    { "darkorange", 0xff8c00 },
    { "darkorchid", 0x9932cc },
    { "darkred", 0x8b0000 },
    { "darksalmon", 0xe9967a },
    { "darkseagreen", 0x8fbc8f },
    { "darkslateblue", 0x483d8b },
    { "darkslategrey", 0x2f4f4f },
    { "darkturquoise", 0x00ced1 },
    { "darkviolet", 0x9400d3 },
    { "deeppink", 0xff1493 },
    { "deepskyblue", 0x00bfff },
    { "dimgrey", 0x696969 },
    { "dodgerblue", 0x1e90ff },
    { "firebrick", 0xb22222 },
    { "floralwhite", 0xfffaf0 },
    { "forestgreen", 0x228b22 },
    { "gainsboro", 0xdcdcdc },
    { "ghostwhite", 0xf8f8ff },
    { "gold", 0xffd700 },
    { "goldenrod", 0xdaa520 },
    { "green", 0x008000 },
    { "greenyellow", 0xadff2f },
    { "grey", 0x808080 },
    { "honeydew", 0xf0fff0 },
    { "hotpink", 0xff69b4 },
    { "indianred", 0xcd5c5c },
    { "indigo", 0x4b0082 },
    { "ivory", 0xfffff0 },
    { "khaki", 0xf0e68c },
    { "lavender", 0xe6e6fa },
    { "lavenderblush", 0xfff0f5 },
    { "lawngreen", 0x7cfc00 },
    { "lemonchiffon", 0xfffacd },
    { "lightblue", 0xadd8e6 },
    { "lightcoral", 0xf08080 },
    { "lightcyan", 0xe0ffff },
    { "lightgoldenrodyellow", 0xfafad2 },
    { "lightgreen", 0x90ee90 },
    { "lightgrey", 0xd3d3d3 },
    { "lightpink", 0xffb6c1 },
    { "lightsalmon", 0xffa07a },
    { "lightseagreen", 0x20b2aa },
    { "lightskyblue", 0x87cefa },
    { "lightslategrey", 0x778899 },
    { "lightsteelblue", 0xb0c4de },
    { "lightyellow", 0xffffe0 },
    { "lime", 0x00ff00 },
    { "limegreen", 0x32cd32 },
    { "linen", 0xfaf0e6 },
    { "magenta", 0xff00ff },
    { "maroon", 0x800000 },
    { "mediumaquamarine", 0x66cdaa },
    { "mediumblue", 0x0000cd },
    { "mediumorchid", 0xba55d3 },
    { "mediumpurple", 0x9370db },
    { "mediumseagreen", 0x3cb371 },
    { "mediumslateblue", 0x7b68ee },
    { "mediumspringgreen", 0x00fa9a },
    { "mediumturquoise", 0x48d1cc },
    { "mediumvioletred", 0xc71585 },
    { "midnightblue", 0x191970 },
    { "mintcream", 0xf5fffa },
    { "mistyrose", 0xffe4e1 },
    { "moccasin", 0xffe4b5 },
    { "navajowhite", 0xffdead },
    { "navy", 0x000080 },
    { "oldlace", 0xfdf5e6 },
    { "olive", 0x808000 },
    { "olivedrab", 0x6b8e23 },
    { "orange", 0xffa500 },
    { "orangered", 0xff4500 },
    { "orchid", 0xda70d6 },
    { "palegoldenrod", 0xeee8aa },
    { "palegreen", 0x98fb98 },
    { "paleturquoise", 0xafeeee },
    { "palevioletred", 0xdb7093 },
    { "papayawhip", 0xffefd5 },
    { "peachpuff", 0xffdab9 },
    { "peru", 0xcd853f },
    { "pink", 0xffc0cb },
    { "plum", 0xdda0dd },
    { "powderblue", 0xb0e0e6 },
    { "purple", 0x800080 },
    { "red", 0xff0000 },
    { "rosybrown", 0xbc8f8f },
    { "royalblue", 0x4169e1 },
    { "saddlebrown", 0x8b4513 },
    { "salmon", 0xfa8072 },
    { "sandybrown", 0xf4a460 },
    { "seagreen", 0x2e8b57 },
    { "seashell", 0xfff5ee },
    { "sienna", 0xa0522d },
    { "silver", 0xc0c0c0 },
    { "skyblue", 0x87ceeb },
    { "slateblue", 0x6a5acd },
    { "slategrey", 0x708090 },
    { "snow", 0xfffafa },
    { "springgreen", 0x00ff7f },
    { "steelblue", 0x4682b4 },
    { "tan", 0xd2b48c },
    { "teal", 0x008080 },
    { "thistle", 0xd8bfd8 },
    { "tomato", 0xff6347 },
    { "turquoise", 0x40e0d0 },
    { "violet", 0xee82ee },
    { "wheat", 0xf5deb3 },
    { "white", 0xffffff },
    { "whitesmoke", 0xf5f5f5 },
    { "yellow", 0xffff00 },
    { "yellowgreen", 0x9acd32 },
};

double py_mod1(double x) {  // Python's x % 1.0 (never negative)
    const double m = std::fmod(x, 1.0);
    return m < 0 ? m + 1.0 : m;
}

// Python's colorsys.hsv_to_rgb.
void hsv_to_rgb(double h, double s, double v, double & r, double & g, double & b) {
    if (s == 0.0) {
        r = g = b = v;
        return;
    }
    int          i = (int)(h * 6.0);
    const double f = h * 6.0 - i;
    const double p = v * (1.0 - s), q = v * (1.0 - s * f), t = v * (1.0 - s * (1.0 - f));
    i %= 6;
    switch (i) {
        case 0:
            r = v, g = t, b = p;
            break;
        case 1:
            r = q, g = v, b = p;
            break;
        case 2:
            r = p, g = v, b = t;
            break;
        case 3:
            r = p, g = q, b = v;
            break;
        case 4:
            r = t, g = p, b = v;
            break;
        default:
            r = v, g = p, b = q;
            break;
    }
}

}  // namespace

std::string css_color_name(int r, int g, int b) {
    const uint32_t rgb = ((uint32_t)r << 16) | ((uint32_t)g << 8) | (uint32_t)b;
    for (const auto & c : k_css3) {
        if (c.rgb == rgb) {
            return c.name;
        }
    }
    const char * best   = nullptr;
    long         best_d = 0;
    for (const auto & c : k_css21) {
        const long dr = r - (long)(c.rgb >> 16), dg = g - (long)((c.rgb >> 8) & 0xff), db = b - (long)(c.rgb & 0xff);
        const long d = dr * dr + dg * dg + db * db;
        if (!best || d <= best_d) {  // a later name wins a tie
            best   = c.name;
            best_d = d;
        }
    }
    return best;
}

std::string synthetic_car_color(double hue, double sat, double val) {
    double r = 0, g = 0, b = 0;
    hsv_to_rgb(py_mod1(hue + 0.5), 0.5 * sat, 0.5 * val, r, g, b);
    return css_color_name((int)(r * 255), (int)(g * 255), (int)(b * 255));
}

std::string reference_json_name(const std::string & image_path) {
    const std::string name = fs::path(image_path).filename().string();
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
        return name;
    }
    return fs::path(name).stem().string() + ".json";
}

std::vector<std::optional<std::string>> label_images(const aspect_labels &            labels,
                                                     const std::vector<std::string> & images) {
    std::vector<std::optional<std::string>> out(images.size());
    if (!labels.by_position.empty()) {
        // The reference pairs the i-th row with the i-th vector file in name order.
        std::vector<size_t> order(images.size());
        for (size_t i = 0; i < order.size(); ++i) {
            order[i] = i;
        }
        std::vector<std::string> names(images.size());
        for (size_t i = 0; i < images.size(); ++i) {
            names[i] = reference_json_name(images[i]);
        }
        std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return names[x] < names[y]; });
        for (size_t k = 0; k < order.size() && k < labels.by_position.size(); ++k) {
            out[order[k]] = labels.by_position[k];
        }
        return out;
    }
    for (size_t i = 0; i < images.size(); ++i) {
        const auto it = labels.by_name.find(reference_json_name(images[i]));
        if (it != labels.by_name.end()) {
            out[i] = it->second;
        }
    }
    return out;
}

std::vector<aspect_labels> load_labels(const std::string & dataset, const label_sources & src) {
    const std::string meta    = src.metadata_dir.empty() ? std::string(DIOR_DATA_DIR "/reference") : src.metadata_dir;
    const std::string shipped = "it ships with dior.cpp in data/reference/; pass --metadata-dir";
    if (dataset == "deepfashion") {
        // The reference looks up vector files by the metadata's file names with ".jpg" -> ".json".
        return from_table((fs::path(meta) / "deepfashion_metadata.csv").string(), ',', "file_names",
                          { { "clothing category", "clothing_category" },
                            { "texture type", "texture" },
                            { "fabric type", "fabric" },
                            { "fit type", "fit" } },
                          shipped, [](const std::string & f) { return replace_all(f, ".jpg", ".json"); });
    }
    if (dataset == "movie_posters") {
        return from_table((fs::path(meta) / "movie_posters_metadata.tsv").string(), '\t', "imdbID",
                          { { "movie genre", "Genre" }, { "movie's production country", "Country" } }, shipped,
                          [](const std::string & id) { return id + ".json"; });
    }
    if (dataset == "cub200") {
        // Species from the file name: the name up to its first ".", split on "_", the last two parts
        // dropped, joined with spaces (Black_Footed_Albatross_0001_796111 -> "Black Footed Albatross").
        aspect_labels a;
        a.aspect = "bird species";
        for (const auto & img : src.images) {
            const std::string        json = reference_json_name(img);
            const std::string        base = json.substr(0, json.find('.'));
            std::vector<std::string> parts(1);
            for (char ch : base) {
                if (ch == '_') {
                    parts.emplace_back();
                } else {
                    parts.back().push_back(ch);
                }
            }
            std::string species;
            for (size_t i = 0; i + 2 < parts.size(); ++i) {
                species += (i ? " " : "") + parts[i];
            }
            a.by_name[json] = species;
        }
        return { a };
    }
    if (dataset == "cars196") {
        if (src.cars196_labels.empty()) {
            throw error(
                "cars196 labels are not published by the reference: pass --cars196-labels FILE, a CSV of "
                "\"file,class\" rows for the Stanford Cars test split (e.g. from cars_test_annos_withlabels)");
        }
        std::ifstream f(src.cars196_labels);
        if (!f) {
            throw error("label file not found: " + src.cars196_labels);
        }
        aspect_labels a;
        a.aspect = "car model";
        // The reference reads info_files/cars/test.json in its order; this file stands for it.
        a.rows_from = fs::path(src.cars196_labels).filename().string() + ", in place of the reference's test.json";
        for (std::string line; std::getline(f, line);) {
            const auto rec = split_record(line, ',');
            if (rec.size() >= 2 && !rec[1].empty() && std::isdigit((unsigned char)rec[1][0])) {
                a.rows.emplace_back(reference_json_name(rec[0]), rec[1]);
                a.by_name[a.rows.back().first] = rec[1];
            }
        }
        return { a };
    }
    if (dataset == "synthetic_cars") {
        // pandas.read_csv(csv, index_col=0)[:1000]; rows are paired with the images by position.
        if (src.synthetic_cars_csv.empty()) {
            throw error("synthetic_cars needs its metadata CSV: pass --synthetic-cars-csv FILE");
        }
        const std::string path  = src.synthetic_cars_csv;
        const table       t     = read_table(path, ',', "pass --synthetic-cars-csv FILE");
        const int         model = required_column(t, { "model" }, path);
        const int         ch    = required_column(t, { "color_hue" }, path);
        const int         cs    = required_column(t, { "color_sat" }, path);
        const int         cv    = required_column(t, { "color_val" }, path);
        const int         bh    = required_column(t, { "bg_color_hue" }, path);
        const int         bs    = required_column(t, { "bg_color_sat" }, path);
        const int         bv    = required_column(t, { "bg_color_val" }, path);
        aspect_labels     m, c, bg;
        m.aspect  = "car model";
        c.aspect  = "car color";
        bg.aspect = "background color";
        for (size_t r = 0; r < t.rows.size() && r < 1000; ++r) {  // the reference uses the first 1000 rows
            const auto & row  = t.rows[r];
            const auto   cell = [&](int col) { return col < (int)row.size() ? row[col] : std::string(); };
            const auto   num  = [&](int col) {
                const std::string v = cell(col);
                try {
                    size_t       used = 0;
                    const double d    = std::stod(v, &used);
                    if (used == v.size()) {
                        return d;
                    }
                } catch (const std::exception &) {
                }
                throw error(path + ": row " + std::to_string(r + 2) + ", column " + t.header[col] + ": '" + v +
                               "' is not a number (hue, saturation and value are numbers in 0..1)");
            };
            m.by_position.push_back(label_cell(cell(model)));
            c.by_position.push_back(synthetic_car_color(num(ch), num(cs), num(cv)));
            bg.by_position.push_back(synthetic_car_color(num(bh), num(bs), num(bv)));
        }
        if (t.rows.empty()) {
            throw error(path + ": no rows");
        }
        return { m, c, bg };
    }
    throw error("no labels for dataset '" + dataset + "'");
}

}  // namespace dior
