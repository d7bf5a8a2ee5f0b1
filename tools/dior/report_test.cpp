// dior report: one self-contained HTML file from a store and its evaluation. What a browser shows
// of it is checked by tests/browser/pages_test.py; this checks what the file holds.
#include "../../tests/support/sample_store.h"
#include "dior.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

dior::test::run_result run(const std::string & args) {
    return dior::test::run_shell(dior::test::dior_bin() + " " + args);
}

std::string read(const fs::path & p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

size_t count(const std::string & text, const std::string & what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

class Report : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("dior_report_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        s_ = dior::test::make_sample_store(dir_, 6);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path                 dir_;
    dior::test::sample_store s_;
};

TEST_F(Report, HoldsTheResultsTableChartsAndNeighbourThumbnails) {
    const fs::path out = dir_ / "r.html";
    const auto     r   = run("report --db " + s_.db.string() + " --eval " + s_.eval.string() + " -o " + out.string() +
                             " --queries 2 -k 3 --charts-dir " + (dir_ / "charts").string() + " --png");
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string h = read(out);
    EXPECT_EQ(h.rfind("<!doctype html>", 0), 0u);
    EXPECT_NE(h.find("<table class=\"results\">"), std::string::npos);
    EXPECT_NE(h.find("<th colspan=\"2\">deepfashion</th>"), std::string::npos);  // the two evaluated aspects
    EXPECT_NE(h.find("<th>texture type</th>"), std::string::npos);
    EXPECT_NE(h.find("<th>fabric type</th>"), std::string::npos);
    EXPECT_NE(h.find(">DIOR · text · describe · layer -1</th>"), std::string::npos) << "the method row";
    // NMI / AMI per cell, with NMI's range and mean over the k-means seeds dior eval tried
    EXPECT_NE(h.find("<table class=\"clustering\">"), std::string::npos);
    EXPECT_EQ(count(h, "<span class=\"spread\">"), 2u);
    EXPECT_NE(h.find("over 10 other k-means seeds"), std::string::npos);
    EXPECT_EQ(count(h, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\""), 2u);
    EXPECT_EQ(count(h, "class=\"bar\""), 4u);  // mAP@R and P@1 of one method, per aspect
    // 2 queries x 2 settings, each a row of the query and 3 neighbours; thumbnails embedded
    EXPECT_EQ(count(h, "<div class=\"nrow\">"), 4u);
    EXPECT_EQ(count(h, "<figure class=\"neighbor\">"), 12u);
    EXPECT_GE(count(h, "src=\"data:image/jpeg;base64,"), 16u);
    EXPECT_EQ(h.find("src=\"/"), std::string::npos) << "nothing outside the file";
    EXPECT_EQ(count(h, "http://"), count(h, "http://www.w3.org/2000/svg")) << "no link leaves the file";
    // the charts as files too: SVG, and PNG drawn by cairo (twice the SVG's pixels)
    size_t svgs = 0, pngs = 0;
    for (const auto & e : fs::directory_iterator(dir_ / "charts")) {
        svgs += e.path().extension() == ".svg";
        if (e.path().extension() == ".png") {
            ++pngs;
            const std::string b   = read(e.path());
            const dior::image img = dior::decode_image((const uint8_t *)b.data(), b.size(), e.path().string(), 0);
            EXPECT_EQ(img.width, 2 * 690);
            // not blank: the bars' blue is there
            bool blue = false;
            for (size_t i = 0; i + 2 < img.rgb.size() && !blue; i += 3) {
                blue = img.rgb[i] == 0x3b && img.rgb[i + 1] == 0x6e && img.rgb[i + 2] == 0xa5;
            }
            EXPECT_TRUE(blue) << e.path();
        }
    }
    EXPECT_EQ(svgs, 2u);
    EXPECT_EQ(pngs, 2u);
}

TEST_F(Report, MissingImagesShowAPlaceholderAndNoEvaluationIsSaidPlainly) {
    for (const auto & p : s_.paths) {
        fs::remove(p);  // every image gone from disk: thumbnails cannot be made
    }
    const fs::path out = dir_ / "r.html";
    const auto     r = run("report --db " + s_.db.string() + " -o " + out.string() + " --query '" + s_.paths[2] + "'");
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string h = read(out);
    EXPECT_NE(h.find("No evaluation given"), std::string::npos);
    EXPECT_EQ(count(h, "src=\"data:image/jpeg"), 0u);
    EXPECT_GE(count(h, "class=\"thumb missing\""), 2u * 6u);  // query + 5 neighbours, both settings
    EXPECT_NE(h.find("data:image/svg+xml;base64,"), std::string::npos);
}

TEST_F(Report, BadInputsAreNamed) {
    auto r = run("report --db " + (dir_ / "none.db").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("store not found"), std::string::npos) << r.output;
    r = run("report --db " + s_.db.string() + " --png -o " + (dir_ / "x.html").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("--charts-dir"), std::string::npos) << r.output;
    r = run("report --db " + s_.db.string() + " --eval " + (dir_ / "noeval").string() + " -o " +
            (dir_ / "x.html").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("evaluation folder not found"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "x.html"));
    // a stray file in the evaluation folder is skipped with a warning
    std::ofstream(s_.eval / "notes.json") << "{ not json";
    r = run("report --db " + s_.db.string() + " --eval " + s_.eval.string() + " -o " + (dir_ / "y.html").string());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("notes.json is not an evaluation"), std::string::npos) << r.output;
}

}  // namespace
