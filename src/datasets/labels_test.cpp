#include "dior.h"

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

TEST(Labels, Cub200SpeciesComeFromFileNames) {
    dior::label_sources src;
    src.images        = { "/data/cub200/Black_Footed_Albatross_0001_796111.jpg", "Laysan_Albatross_0002_1027.jpg",
                          "/x/Chuck_will_Widow_0010_796554.jpg", "noseparator.jpg" };
    const auto labels = dior::load_labels("cub200", src);
    ASSERT_EQ(labels.size(), 1u);
    EXPECT_EQ(labels[0].aspect, "bird species");
    EXPECT_EQ(labels[0].by_image.at("Black_Footed_Albatross_0001_796111"), "Black_Footed_Albatross");
    EXPECT_EQ(labels[0].by_image.at("Laysan_Albatross_0002_1027"), "Laysan_Albatross");
    EXPECT_EQ(labels[0].by_image.at("Chuck_will_Widow_0010_796554"), "Chuck_will_Widow");
    EXPECT_EQ(labels[0].by_image.count("noseparator"), 0u);
}

TEST(Labels, DeepfashionCellsAreTakenVerbatim) {
    const fs::path d = temp_dir("dior_labels_df");
    std::ofstream(d / "deepfashion_metadata.csv")
        << "file_names,clothing_category,texture,fabric,fit\n"
        << "Floral_Print_Shirt_Dress-img_00000065.jpg,41,1 0 0 0 0 0 0 ,0 0 1 0 0 0 ,1 0 0 \n"
        << "\"Take_Less,_Give_More_Tee-img_00000017.jpg\",18,0 1 0 0 0 0 0 ,0 0 1 0 0 0 ,0 0 1 \n";
    dior::label_sources src;
    src.metadata_dir  = d.string();
    const auto labels = dior::load_labels("deepfashion", src);
    ASSERT_EQ(labels.size(), 4u);
    EXPECT_EQ(aspect(labels, "clothing category").by_image.at("Floral_Print_Shirt_Dress-img_00000065"), "41");
    EXPECT_EQ(aspect(labels, "texture type").by_image.at("Floral_Print_Shirt_Dress-img_00000065"), "1 0 0 0 0 0 0 ");
    EXPECT_EQ(aspect(labels, "fit type").by_image.at("Take_Less,_Give_More_Tee-img_00000017"), "0 0 1 ");
    EXPECT_EQ(aspect(labels, "fabric type").by_image.size(), 2u);
    fs::remove_all(d);
}

TEST(Labels, ShippedMetadataFilesLoad) {
    const auto df = dior::load_labels("deepfashion", {});
    EXPECT_EQ(aspect(df, "clothing category").by_image.size(), 4000u);
    EXPECT_EQ(aspect(df, "fit type").by_image.at("Butterfly_Sleeve_Sheath_Dress-img_00000034"), "0 0 1 ");
    const auto mp = dior::load_labels("movie_posters", {});
    EXPECT_EQ(aspect(mp, "movie genre").by_image.size(), 8052u);
    EXPECT_EQ(aspect(mp, "movie genre").by_image.at("tt0079285"), "Adventure");
    EXPECT_EQ(aspect(mp, "movie's production country").by_image.at("tt0079302"), "USA");
}

TEST(Labels, MoviePostersByImdbId) {
    const fs::path d = temp_dir("dior_labels_mp");
    std::ofstream(d / "movie_posters_metadata.tsv") << "imdbID\tGenre\tCountry\ntt1\tComedy\tUSA\ntt2\tDrama\tFrance\n";
    dior::label_sources src;
    src.metadata_dir  = d.string();
    const auto labels = dior::load_labels("movie_posters", src);
    EXPECT_EQ(aspect(labels, "movie genre").by_image.at("tt2"), "Drama");
    EXPECT_EQ(aspect(labels, "movie's production country").by_image.at("tt1"), "USA");
    fs::remove_all(d);
}

TEST(Labels, CssColourNames) {
    EXPECT_EQ(dior::css_color_name(0, 0, 0), "black");       // CSS3 exact
    EXPECT_EQ(dior::css_color_name(128, 128, 128), "gray");  // "gray" spelling, as webcolors
    EXPECT_EQ(dior::css_color_name(169, 169, 169), "darkgray");
    EXPECT_EQ(dior::css_color_name(0, 255, 255), "cyan");
    EXPECT_EQ(dior::css_color_name(255, 0, 255), "magenta");
    EXPECT_EQ(dior::css_color_name(70, 130, 180), "steelblue");  // CSS3 only: exact wins
    EXPECT_EQ(dior::css_color_name(127, 63, 63), "maroon");      // nearest CSS 2.1
    EXPECT_EQ(dior::css_color_name(127, 127, 127), "gray");
    EXPECT_EQ(dior::css_color_name(250, 160, 10), "orange");
}

TEST(Labels, SyntheticCarsFromHsvRows) {
    // hue shifted by 0.5, saturation and value halved, x255 truncated:
    //   (0.5, 1, 1) -> hsv(0, .5, .5) -> (127, 63, 63) -> maroon
    //   (0.7, 0, 0) -> black;  (0.0, 0, 1) -> (127, 127, 127) -> gray
    //   (0.1667, 1, 1) -> hsv(0.6667, .5, .5) -> (63, 63, 127) -> navy
    const fs::path d = temp_dir("dior_labels_sc");
    std::ofstream(d / "meta.csv") << "file_name,model,car_hue,car_saturation,car_value,background_hue,"
                                     "background_saturation,background_value\n"
                                  << "car_0000.png,sedan,0.5,1,1,0.7,0,0\n"
                                  << "car_0001.png,suv,0.0,0,1,0.1667,1,1\n";
    dior::label_sources src;
    src.synthetic_cars_csv = (d / "meta.csv").string();
    const auto labels      = dior::load_labels("synthetic_cars", src);
    EXPECT_EQ(aspect(labels, "car model").by_image.at("car_0001"), "suv");
    EXPECT_EQ(aspect(labels, "car color").by_image.at("car_0000"), "maroon");
    EXPECT_EQ(aspect(labels, "car color").by_image.at("car_0001"), "gray");
    EXPECT_EQ(aspect(labels, "background color").by_image.at("car_0000"), "black");
    EXPECT_EQ(aspect(labels, "background color").by_image.at("car_0001"), "navy");
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
    EXPECT_EQ(labels[0].by_image.at("00002"), "103");
    EXPECT_EQ(labels[0].by_image.size(), 2u);
    fs::remove_all(d);
}

}  // namespace
