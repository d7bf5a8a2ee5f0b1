#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const char * name) {
    const fs::path d = fs::temp_directory_path() / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

const dior::aspect_labels & aspect(const std::vector<dior::aspect_labels> & all, const std::string & name) {
    for (const auto & a : all) {
        if (a.aspect == name) {
            return a;
        }
    }
    throw std::runtime_error("no aspect " + name);
}

TEST(Labels, ReferenceJsonNamesKeepDots) {
    EXPECT_EQ(dior::reference_json_name("/d/L.A.T.H.C._Abstract_Print_Tee-img_00000022.jpg"),
              "L.A.T.H.C._Abstract_Print_Tee-img_00000022.json");
    EXPECT_EQ(dior::reference_json_name("L.A.T.H.C._Abstract_Print_Tee-img_00000022.json"),
              "L.A.T.H.C._Abstract_Print_Tee-img_00000022.json");
    EXPECT_EQ(dior::reference_json_name("tt0079285.jpg"), "tt0079285.json");
    EXPECT_EQ(dior::reference_json_name("noext"), "noext.json");
}

TEST(Labels, Cub200SpeciesComeFromFileNames) {
    dior::label_sources src;
    src.images        = { "/data/cub200/Black_Footed_Albatross_0001_796111.jpg", "Laysan_Albatross_0002_1027.json",
                          "/x/Chuck_will_Widow_0010_796554.jpg", "noseparator.jpg", "Odd.Name_Bird_0001_5.jpg" };
    const auto labels = dior::load_labels("cub200", src);
    ASSERT_EQ(labels.size(), 1u);
    const auto & a = labels[0];
    EXPECT_EQ(a.aspect, "bird species");
    const auto got = dior::label_images(a, src.images);
    EXPECT_EQ(got[0], "Black Footed Albatross");
    EXPECT_EQ(got[1], "Laysan Albatross");
    EXPECT_EQ(got[2], "Chuck will Widow");
    EXPECT_EQ(got[3], "");  // the reference's rule leaves an empty species, still a label
    EXPECT_EQ(got[4], "");  // up to the first "." only: "Odd" has fewer than three parts
}

TEST(Labels, DeepfashionCellsAreTakenVerbatim) {
    const fs::path d = temp_dir("dior_labels_df");
    std::ofstream(d / "deepfashion_metadata.csv")
        << "file_names,clothing_category,texture,fabric,fit\n"
        << "Floral_Print_Shirt_Dress-img_00000065.jpg,41,1 0 0 0 0 0 0 ,0 0 1 0 0 0 ,1 0 0 \n"
        << "\"Take_Less,_Give_More_Tee-img_00000017.jpg\",18,0 1 0 0 0 0 0 ,0 0 1 0 0 0 ,0 0 1 \n"
        << "L.A.T.H.C._Abstract_Print_Tee-img_00000022.jpg,5,N/A,,NA,\n";
    dior::label_sources src;
    src.metadata_dir  = d.string();
    const auto labels = dior::load_labels("deepfashion", src);
    ASSERT_EQ(labels.size(), 4u);
    const std::vector<std::string> imgs = { "/x/Floral_Print_Shirt_Dress-img_00000065.jpg",
                                            "Take_Less,_Give_More_Tee-img_00000017.json",
                                            "/y/L.A.T.H.C._Abstract_Print_Tee-img_00000022.jpg", "/z/unknown.jpg" };
    EXPECT_EQ(dior::label_images(aspect(labels, "clothing category"), imgs)[0], "41");
    EXPECT_EQ(dior::label_images(aspect(labels, "texture type"), imgs)[0], "1 0 0 0 0 0 0 ");
    EXPECT_EQ(dior::label_images(aspect(labels, "fit type"), imgs)[1], "0 0 1 ");
    EXPECT_EQ(dior::label_images(aspect(labels, "clothing category"), imgs)[2], "5");
    // pandas' NaN cells ("N/A", empty, "NA", ...) are one class
    EXPECT_EQ(dior::label_images(aspect(labels, "texture type"), imgs)[2], dior::k_missing_label);
    EXPECT_EQ(dior::label_images(aspect(labels, "fabric type"), imgs)[2], dior::k_missing_label);
    EXPECT_EQ(dior::label_images(aspect(labels, "fit type"), imgs)[2], dior::k_missing_label);
    EXPECT_FALSE(dior::label_images(aspect(labels, "fit type"), imgs)[3].has_value());
    fs::remove_all(d);
}

TEST(Labels, ShippedMetadataLabelsAllDeepfashionNamesWhole) {
    const auto df = dior::load_labels("deepfashion", {});
    EXPECT_EQ(aspect(df, "clothing category").by_name.size(), 4000u);
    // Every one of the 4000 file names, dotted ones included, gets a label under every aspect.
    std::ifstream            f(std::string(DIOR_TEST_SOURCE_DIR) + "/data/reference/deepfashion_metadata.csv");
    std::vector<std::string> names;
    std::string              line;
    std::getline(f, line);
    size_t n_dotted = 0;
    while (std::getline(f, line)) {
        std::string name = line[0] == '"' ? line.substr(1, line.find('"', 1) - 1) : line.substr(0, line.find(','));
        n_dotted += std::count(name.begin(), name.end(), '.') > 1;
        names.push_back("/data/deepfashion/" + name);
    }
    EXPECT_EQ(names.size(), 4000u);
    EXPECT_GE(n_dotted, 8u);
    for (const auto & a : df) {
        const auto got = dior::label_images(a, names);
        EXPECT_EQ((size_t)std::count_if(got.begin(), got.end(), [](const auto & l) { return l.has_value(); }), 4000u)
            << a.aspect;
    }
    EXPECT_EQ(dior::label_images(aspect(df, "fit type"), { "Butterfly_Sleeve_Sheath_Dress-img_00000034.jpg" })[0],
              "0 0 1 ");
    const auto mp = dior::load_labels("movie_posters", {});
    EXPECT_EQ(aspect(mp, "movie genre").by_name.size(), 8052u);
    EXPECT_EQ(aspect(mp, "movie genre").by_name.at("tt0079285.json"), "Adventure");
    EXPECT_EQ(aspect(mp, "movie's production country").by_name.at("tt0079302.json"), "USA");
}

TEST(Labels, MoviePostersByImdbIdWithNaAsOneClass) {
    const fs::path d = temp_dir("dior_labels_mp");
    std::ofstream(d / "movie_posters_metadata.tsv")
        << "imdbID\tGenre\tCountry\ntt1\tComedy\tUSA\ntt2\tDrama\tFrance\ntt3\tN/A\tN/A\ntt4\tNA\t\n";
    dior::label_sources src;
    src.metadata_dir  = d.string();
    const auto labels = dior::load_labels("movie_posters", src);
    const auto genre  = dior::label_images(aspect(labels, "movie genre"), { "tt2.jpg", "tt3.jpg", "tt4.jpg" });
    EXPECT_EQ(genre[0], "Drama");
    EXPECT_EQ(genre[1], genre[2]);  // "N/A" and "NA" are both NaN to pandas: one class
    EXPECT_EQ(genre[1], dior::k_missing_label);
    const auto country =
        dior::label_images(aspect(labels, "movie's production country"), { "tt1.jpg", "tt3.jpg", "tt4.jpg" });
    EXPECT_EQ(country[0], "USA");
    EXPECT_EQ(country[1], country[2]);
    fs::remove_all(d);
}

TEST(Labels, CssColourNames) {
    EXPECT_EQ(dior::css_color_name(0, 0, 0), "black");       // CSS3 exact
    EXPECT_EQ(dior::css_color_name(128, 128, 128), "grey");  // webcolors 1.5's reversed CSS3 table
    EXPECT_EQ(dior::css_color_name(169, 169, 169), "darkgrey");
    EXPECT_EQ(dior::css_color_name(0, 255, 255), "cyan");
    EXPECT_EQ(dior::css_color_name(255, 0, 255), "magenta");
    EXPECT_EQ(dior::css_color_name(70, 130, 180), "steelblue");  // CSS3 only: exact wins
    EXPECT_EQ(dior::css_color_name(127, 63, 63), "maroon");      // nearest CSS 2.1
    EXPECT_EQ(dior::css_color_name(127, 127, 127), "gray");      // nearest CSS 2.1 spells it "gray"
    EXPECT_EQ(dior::css_color_name(250, 160, 10), "orange");
}

TEST(Labels, CssColourTiesGoToTheLaterName) {
    // (64, 0, 0) is 64^2 from black and from maroon: maroon comes later in webcolors' table.
    EXPECT_EQ(dior::css_color_name(64, 0, 0), "maroon");
    // (0, 64, 0): black and green tie; green is later.
    EXPECT_EQ(dior::css_color_name(0, 64, 0), "green");
    // (0, 0, 64): black and navy tie; navy is later.
    EXPECT_EQ(dior::css_color_name(0, 0, 64), "navy");
}

// webcolors 1.5 itself (tests/oracle/color_names.py), on exact CSS3 values, ties and a grid.
TEST(Labels, ColourNamesMatchWebcolors) {
    std::ifstream f(fs::path(DIOR_TEST_DATA_DIR) / "colors" / "names.txt");
    ASSERT_TRUE(f) << "fixture missing";
    int r = 0, g = 0, b = 0, n = 0, n_bad = 0;
    for (std::string name; f >> r >> g >> b >> name; ++n) {
        if (dior::css_color_name(r, g, b) != name) {
            if (++n_bad < 10) {
                ADD_FAILURE() << r << " " << g << " " << b << ": dior " << dior::css_color_name(r, g, b)
                              << ", webcolors " << name;
            }
        }
    }
    EXPECT_GT(n, 5000);
    EXPECT_EQ(n_bad, 0);
}

TEST(Labels, SyntheticCarsPairedByPosition) {
    // pandas.read_csv(index_col=0)[:1000]: the first column is the index; rows pair with the
    // images in name order. hue shifted by 0.5, saturation and value halved, x255 truncated:
    //   (0.5, 1, 1) -> hsv(0, .5, .5) -> (127, 63, 63) -> maroon
    //   (0.7, 0, 0) -> black;  (0.0, 0, 1) -> (127, 127, 127) -> gray
    //   (0.1667, 1, 1) -> hsv(0.6667, .5, .5) -> (63, 63, 127) -> navy
    const fs::path d = temp_dir("dior_labels_sc");
    std::ofstream(d / "meta.csv") << ",model,color_hue,color_sat,color_val,bg_color_hue,bg_color_sat,bg_color_val\n"
                                  << "0,sedan,0.5,1,1,0.7,0,0\n"
                                  << "1,suv,0.0,0,1,0.1667,1,1\n";
    dior::label_sources src;
    src.synthetic_cars_csv = (d / "meta.csv").string();
    const auto labels      = dior::load_labels("synthetic_cars", src);
    // Given out of order: the name order decides, not the order given.
    const std::vector<std::string> imgs = { "/c/b_second.png", "/c/a_first.png" };
    EXPECT_EQ(dior::label_images(aspect(labels, "car model"), imgs)[1], "sedan");
    EXPECT_EQ(dior::label_images(aspect(labels, "car model"), imgs)[0], "suv");
    EXPECT_EQ(dior::label_images(aspect(labels, "car color"), imgs)[1], "maroon");
    EXPECT_EQ(dior::label_images(aspect(labels, "car color"), imgs)[0], "gray");
    EXPECT_EQ(dior::label_images(aspect(labels, "background color"), imgs)[1], "black");
    EXPECT_EQ(dior::label_images(aspect(labels, "background color"), imgs)[0], "navy");
    // A third image has no row.
    EXPECT_FALSE(dior::label_images(aspect(labels, "car model"), { "a", "b", "c" })[2].has_value());
    fs::remove_all(d);
}

TEST(Labels, SyntheticCarsOnlyTheFirst1000Rows) {
    const fs::path d = temp_dir("dior_labels_sc1000");
    {
        std::ofstream f(d / "meta.csv");
        f << ",model,color_hue,color_sat,color_val,bg_color_hue,bg_color_sat,bg_color_val\n";
        for (int i = 0; i < 1005; ++i) {
            f << i << ",m" << i << ",0.5,1,1,0.7,0,0\n";
        }
    }
    dior::label_sources src;
    src.synthetic_cars_csv = (d / "meta.csv").string();
    EXPECT_EQ(aspect(dior::load_labels("synthetic_cars", src), "car model").by_position.size(), 1000u);
    std::ofstream(d / "bad.csv") << ",model,color_hue,color_sat,color_val,bg_color_hue,bg_color_sat,bg_color_val\n"
                                 << "0,sedan,red,1,1,0.7,0,0\n";
    src.synthetic_cars_csv = (d / "bad.csv").string();
    try {
        dior::load_labels("synthetic_cars", src);
        FAIL() << "no error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("color_hue"), std::string::npos) << e.what();
    }
    fs::remove_all(d);
}

TEST(Labels, MissingMetadataSaysWhatToPass) {
    try {
        dior::load_labels("synthetic_cars", {});
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("--synthetic-cars-csv"), std::string::npos);
    }
    try {
        dior::load_labels("cars196", {});
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("--cars196-labels"), std::string::npos);
    }
    dior::label_sources src;
    src.synthetic_cars_csv = "/nonexistent/meta.csv";
    EXPECT_THROW(dior::load_labels("synthetic_cars", src), dior::error);
}

TEST(Labels, Cars196FromAFileClassList) {
    const fs::path d = temp_dir("dior_labels_c196");
    std::ofstream(d / "test.csv") << "file,class\n00001.jpg,181\n00002.jpg,103\n";
    dior::label_sources src;
    src.cars196_labels = (d / "test.csv").string();
    const auto labels  = dior::load_labels("cars196", src);
    EXPECT_EQ(labels[0].by_name.at("00002.json"), "103");
    EXPECT_EQ(labels[0].by_name.size(), 2u);
    fs::remove_all(d);
}

}  // namespace
