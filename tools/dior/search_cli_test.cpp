// dior search on the tiny model: stored queries (by path or by content), new images embedded with
// the setting's own model and options, and the errors a user meets.
#include "../../tests/support/sample_store.h"
#include "dior.h"

#include <cmath>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace {

dior::test::run_result run(const std::string & args) {
    return dior::test::run_shell(dior::test::dior_bin() + " " + args);
}

double l2(const float * a, const float * b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) {
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return std::sqrt(s);
}

class Search : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("dior_search_" + std::to_string(getpid()));
        fs::remove_all(dir_);
        s_ = dior::test::make_sample_store(dir_, 8);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static json search(const std::string & args) {
        const auto r = run("search --db " + s_.db.string() + " --json " + args);
        EXPECT_EQ(r.status, 0) << r.output;
        return json::parse(r.output.substr(r.output.find('{')));
    }

    // The stored vectors of the setting of a condition, with their paths.
    static dior::matrix stored(const std::string & condition, std::vector<std::string> & paths) {
        auto st = dior::store::open(s_.db.string(), true);
        for (const auto & s : st->settings()) {
            if (s.s.condition == condition) {
                return st->vectors(s.id, &paths);
            }
        }
        throw std::runtime_error("no setting for " + condition);
    }

    static fs::path                 dir_;
    static dior::test::sample_store s_;
};

fs::path                 Search::dir_;
dior::test::sample_store Search::s_;

TEST_F(Search, StoredQueryLeavesItselfOutAndRanksAsABruteForceScan) {
    const std::string q = s_.paths[3];
    const json        j = search("'" + q + "' -c 'texture type' -k 4");
    ASSERT_EQ(j["results"].size(), 1u);
    const json & r = j["results"][0];
    EXPECT_TRUE(r["query_stored"].get<bool>());
    EXPECT_EQ(r["setting"]["condition"], "texture type");
    ASSERT_EQ(r["neighbors"].size(), 4u);

    std::vector<std::string> paths;
    const dior::matrix       x  = stored("texture type", paths);
    const size_t             qi = (size_t)(std::find(paths.begin(), paths.end(), q) - paths.begin());
    ASSERT_LT(qi, paths.size());
    std::vector<std::pair<double, std::string>> want;
    for (size_t i = 0; i < paths.size(); ++i) {
        if (i != qi) {
            want.emplace_back(l2(&x.data[i * x.cols], &x.data[qi * x.cols], x.cols), paths[i]);
        }
    }
    std::sort(want.begin(), want.end());
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(r["neighbors"][i]["rank"], i + 1);
        EXPECT_EQ(r["neighbors"][i]["path"], want[i].second) << i;
        EXPECT_NEAR(r["neighbors"][i]["distance"].get<double>(), want[i].first, 1e-4 * want[i].first);
    }
}

TEST_F(Search, SeveralConditionsAnswerSideBySideAndCosineIsOnRequest) {
    const json j = search("'" + s_.paths[0] + "' --method dior -k 2 --metric cosine");
    ASSERT_EQ(j["results"].size(), 2u);
    EXPECT_EQ(j["metric"], "cosine");
    std::set<std::string> conds;
    for (const auto & r : j["results"]) {
        conds.insert(r["setting"]["condition"].get<std::string>());
        for (const auto & n : r["neighbors"]) {
            EXPECT_GE(n["distance"].get<double>(), -1e-6);
            EXPECT_LE(n["distance"].get<double>(), 2.0 + 1e-6);
            EXPECT_NE(n["path"], s_.paths[0]);
        }
    }
    EXPECT_EQ(conds, (std::set<std::string>{ "texture type", "fabric type" }));
}

TEST_F(Search, TheSameFileUnderAnotherPathIsFoundByItsContent) {
    const fs::path copy = dir_ / "elsewhere.bmp";
    fs::copy_file(s_.paths[5], copy, fs::copy_options::overwrite_existing);
    const json j = search(copy.string() + " -c 'fabric type' -k 20");
    EXPECT_TRUE(j["results"][0]["query_stored"].get<bool>());
    EXPECT_EQ(j["results"][0]["neighbors"].size(), 7u);  // every other image, k capped
    for (const auto & n : j["results"][0]["neighbors"]) {
        EXPECT_NE(n["path"], s_.paths[5]);
    }
}

// A new image is embedded now, with the setting's model and options: its distances to the stored
// vectors are those of the vector dior embed computes for it.
TEST_F(Search, ANewImageIsEmbeddedAsDiorEmbedWouldEmbedIt) {
    const fs::path img = dir_ / "new.bmp";
    dior::test::write_bmp(img.string(), 52, 44, dior::test::pattern_rgb(52, 44, 11));
    const json j = search(img.string() + " -c 'texture type' -k 3 -t 2");
    ASSERT_FALSE(j["results"][0]["query_stored"].get<bool>());

    const fs::path other = dir_ / "new.db";
    const auto     e     = run("embed " + dior::test::tiny_model_args() + " -c 'texture type' --name deepfashion " +
                               img.string() + " -o " + other.string());
    ASSERT_EQ(e.status, 0) << e.output;
    std::vector<std::string> p1, p2;
    auto                     st2 = dior::store::open(other.string(), true);
    const dior::matrix       v   = st2->vectors(st2->settings()[0].id, &p2);
    const dior::matrix       x   = stored("texture type", p1);
    for (const auto & n : j["results"][0]["neighbors"]) {
        const size_t i = (size_t)(std::find(p1.begin(), p1.end(), n["path"].get<std::string>()) - p1.begin());
        ASSERT_LT(i, p1.size());
        EXPECT_NEAR(n["distance"].get<double>(), l2(&x.data[i * x.cols], v.data.data(), x.cols), 1e-5);
    }
}

TEST_F(Search, TextOutputListsRanksDistancesAndPaths) {
    const auto r = run("search --db " + s_.db.string() + " '" + s_.paths[1] + "' -c 'texture type' -k 2");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("'texture type'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("(stored), l2 distance"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("    1  "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("    2  "), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("    3  "), std::string::npos) << r.output;
}

TEST_F(Search, MistakesGetClearErrors) {
    const std::string db = " --db " + s_.db.string() + " ";
    auto              r  = run("search" + db + "'" + s_.paths[0] + "' --setting 99");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("no setting #99"), std::string::npos) << r.output;
    r = run("search" + db + "'" + s_.paths[0] + "' -c 'car color'");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("no stored setting matches"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("'texture type'"), std::string::npos) << r.output;  // what there is
    r = run("search" + db + (dir_ / "nope.jpg").string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("nope.jpg"), std::string::npos) << r.output;
    r = run("search --db " + (dir_ / "none.db").string() + " x.jpg");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("store not found"), std::string::npos) << r.output;
    r = run("search" + db + "'" + s_.paths[0] + "' --metric manhattan");
    EXPECT_NE(r.output.find("use l2 or cosine"), std::string::npos) << r.output;
}

// A new image needs the setting's model: moved away, the error says which file and what to pass.
TEST_F(Search, AMovedModelIsNamedWithTheOptionThatFindsIt) {
    const fs::path moved = dir_ / "moved";
    fs::create_directories(moved / "img");
    fs::copy_file(dior::test::tiny_dir() + "/text.gguf", moved / "text.gguf");
    fs::copy_file(dior::test::tiny_dir() + "/mmproj.gguf", moved / "mmproj.gguf");
    dior::test::write_bmp((moved / "img" / "a.bmp").string(), 40, 40, dior::test::pattern_rgb(40, 40, 3));
    const std::string db = (moved / "m.db").string();
    ASSERT_EQ(run("embed -m " + (moved / "text.gguf").string() + " --mmproj " + (moved / "mmproj.gguf").string() +
                  " -t 2 -c 'texture type' " + (moved / "img").string() + " -o " + db)
                  .status,
              0);
    fs::remove(moved / "text.gguf");
    const fs::path img = dir_ / "q.bmp";
    dior::test::write_bmp(img.string(), 30, 30, dior::test::pattern_rgb(30, 30, 5));
    auto r = run("search --db " + db + " " + img.string());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("text.gguf is not there; pass -m FILE"), std::string::npos) << r.output;
    // the right file elsewhere works; a different file is refused by its hash
    r = run("search --db " + db + " " + img.string() + " -m " + dior::test::tiny_dir() + "/text.gguf -t 2");
    EXPECT_EQ(r.status, 0) << r.output;
    r = run("search --db " + db + " " + img.string() + " -m " + dior::test::tiny_dir() + "/mmproj.gguf");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("SHA-256 differs"), std::string::npos) << r.output;
}

}  // namespace
