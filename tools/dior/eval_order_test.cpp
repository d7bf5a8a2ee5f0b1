// dior eval against the reference's evaluate.py, as tests/oracle/evaluate_trees.py reproduces it:
// deepfashion-, cub200- and movie_posters-shaped trees with exact and near-duplicate vectors,
// scored in the reference's row order (metadata order; cub200's unsorted folder listing), in name
// order (--row-order sorted), and from a store.
#include "../../tests/support/process.h"
#include "../../tests/support/test_paths.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace {

const fs::path & trees() {
    static const fs::path p = fs::path(DIOR_TEST_DATA_DIR) / "evaluate-trees";
    return p;
}

json read_json(const fs::path & p) {
    std::ifstream f(p);
    return json::parse(f);
}

class EvalOrder : public ::testing::Test {
  protected:
    void SetUp() override {
        out_ = fs::temp_directory_path() /
               ("dior_eval_order_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                "_" + std::to_string(getpid()));
        fs::remove_all(out_);
        fs::create_directories(out_);
        expected_ = read_json(trees() / "expected.json");
    }

    void TearDown() override { fs::remove_all(out_); }

    dior::test::run_result dior(const std::string & args) const {
        return dior::test::run_shell(dior::test::dior_bin() + " " + args);
    }

    std::string metadata() const { return " --metadata-dir " + (trees() / "metadata").string(); }

    // Every aspect of the settings whose name starts with `prefix` against the oracle's values for
    // `mode` ("reference" or "sorted"). Returns how many NMI / AMI values were compared exactly.
    int compare(const fs::path & results, const std::string & mode, const std::string & prefix = "",
                const std::string & option = "") const {
        int exact = 0;
        for (const auto & [setting, aspects] : expected_["settings"].items()) {
            if (setting.rfind(prefix, 0) != 0) {
                continue;
            }
            const json got = read_json(results / (setting + ".json"));
            EXPECT_EQ(got["row_order"], option.empty() ? mode : option) << setting;
            for (const auto & [aspect, modes] : aspects.items()) {
                const json &      want  = modes[mode];
                const json &      g     = got["results"][aspect];
                const std::string where = setting + ", " + aspect + " (" + mode + ")";
                if (!g.is_object()) {
                    ADD_FAILURE() << where << ": no result";
                    continue;
                }
                EXPECT_EQ(g["images"], want["images"]) << where;
                // P@1 and mAP@R: exact, but for the range float32 rounding ties leave open.
                const double d_map = std::fabs(g["mean_average_precision_at_r"].get<double>() -
                                               want["mean_average_precision_at_r"].get<double>());
                const double d_p1 = std::fabs(g["precision_at_1"].get<double>() - want["precision_at_1"].get<double>());
                EXPECT_LE(d_map, 1e-9 + want["map_slack"].get<double>()) << where;
                EXPECT_LE(d_p1, 1e-9 + want["p1_slack"].get<double>()) << where;
                // NMI / AMI: exact wherever rounding cannot change faiss' clustering.
                const auto check = [&](double nmi, double ami, double want_nmi, double want_ami, bool decided,
                                       const std::string & what) {
                    if (decided) {
                        EXPECT_NEAR(nmi, want_nmi, 1e-9) << where << ", " << what;
                        EXPECT_NEAR(ami, want_ami, 1e-9) << where << ", " << what;
                        ++exact;
                    }
                    EXPECT_LE(std::fabs(nmi), 1.0) << where << ", " << what;
                };
                check(g["NMI"], g["AMI"], want["NMI"], want["AMI"], want["kmeans_decided"], "seed 1234");
                if (!g.contains("NMI_over_seeds") || !g.contains("AMI_over_seeds")) {
                    ADD_FAILURE() << where << ": no NMI / AMI over seeds";
                    continue;
                }
                const json & seeds = g["NMI_over_seeds"]["seeds"];
                EXPECT_EQ(seeds.size(), want["NMI_seeds"].size()) << where;
                for (size_t i = 0; i < seeds.size() && i < want["NMI_seeds"].size(); ++i) {
                    EXPECT_EQ(seeds[i].get<int>(), (int)i + 1) << where;
                    check(g["NMI_over_seeds"]["values"][i], g["AMI_over_seeds"]["values"][i], want["NMI_seeds"][i],
                          want["AMI_seeds"][i], want["kmeans_decided_seeds"][i], "seed " + std::to_string(i + 1));
                }
                std::printf("%-80s %-28s %-9s |d| map@r %.1e (slack %.1e) p@1 %.1e (slack %.1e) NMI %.4f (PML %.4f)\n",
                            setting.c_str(), aspect.c_str(), mode.c_str(), d_map, want["map_slack"].get<double>(), d_p1,
                            want["p1_slack"].get<double>(), g["NMI"].get<double>(), want["NMI"].get<double>());
            }
        }
        return exact;
    }

    fs::path out_;
    json     expected_;
};

// The tree's settings in the reference's own order: metadata rows for deepfashion and
// movie_posters, the folder listing (unsorted, hidden files left out) for cub200.
TEST_F(EvalOrder, ReferenceTreeScoresAsEvaluatePyReadsIt) {
    ASSERT_TRUE(expected_["cub200_listing_unsorted"].get<bool>())
        << "the cub200 folders list their files sorted on this file system: the test would prove nothing";
    const auto r = dior("eval --embedding-dir " + (trees() / "embeddings").string() + metadata() + " -o " +
                        (out_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    const int exact = compare(out_ / "res", "reference");
    EXPECT_GE(exact, 50) << "too few k-means runs free of rounding ties to compare exactly";
    const json cub =
        read_json(out_ / "res" / "cub200-m-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last.json");
    EXPECT_NE(cub["results"]["bird species"]["row_order"].get<std::string>().find("folder listing"), std::string::npos);
    const json df =
        read_json(out_ / "res" / "deepfashion-m-describe-fit_type-num_layer=-1-num_token=-1-embedsrc=input_last.json");
    EXPECT_NE(df["results"]["fit type"]["row_order"].get<std::string>().find("deepfashion_metadata.csv"),
              std::string::npos);
    EXPECT_EQ(df["results"]["fit type"]["unlabeled"].size(), 3u);  // files the metadata does not name
    EXPECT_NE(r.output.find("nmi over 10 k-means seeds"), std::string::npos) << r.output;
}

// --row-order sorted: every setting by file name, which changes NMI / AMI (and exact ties).
TEST_F(EvalOrder, SortedOrderIsTheOption) {
    const auto r = dior("eval --row-order sorted --embedding-dir " + (trees() / "embeddings").string() + metadata() +
                        " -o " + (out_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_GE(compare(out_ / "res", "sorted"), 50);
    // The order matters on these trees, for each dataset: some k-means run that no rounding tie
    // decides, in either order, gives another NMI in the other order (and dior matched both above).
    for (const std::string dataset : { "deepfashion", "movie_posters", "cub200" }) {
        int differ = 0;
        for (const auto & [setting, aspects] : expected_["settings"].items()) {
            if (setting.rfind(dataset + "-", 0) != 0) {
                continue;
            }
            for (const auto & [aspect, modes] : aspects.items()) {
                const json & a = modes["reference"];
                const json & b = modes["sorted"];
                differ += a["kmeans_decided"].get<bool>() && b["kmeans_decided"].get<bool>() &&
                          std::fabs(a["NMI"].get<double>() - b["NMI"].get<double>()) > 1e-6;
                for (size_t i = 0; i < a["NMI_seeds"].size(); ++i) {
                    differ += a["kmeans_decided_seeds"][i].get<bool>() && b["kmeans_decided_seeds"][i].get<bool>() &&
                              std::fabs(a["NMI_seeds"][i].get<double>() - b["NMI_seeds"][i].get<double>()) > 1e-6;
                }
            }
        }
        EXPECT_GE(differ, 1) << dataset << ": the row order changes no clustering in this tree";
    }
    const auto bad = dior("eval --row-order shuffled --embedding-dir " + (trees() / "embeddings").string() +
                          metadata() + " -o " + out_.string());
    EXPECT_NE(bad.status, 0);
    EXPECT_NE(bad.output.find("--row-order"), std::string::npos) << bad.output;
}

// From a store: the metadata order is known there too; a folder's listing is not, so cub200 is
// scored by name, and the results say so.
TEST_F(EvalOrder, StoreScoresMetadataOrderAndSaysWhatItCannotKnow) {
    const std::string db = (out_ / "e.db").string();
    const auto        i  = dior("import " + (trees() / "embeddings").string() + " --db " + db);
    ASSERT_EQ(i.status, 0) << i.output;
    const auto r = dior("eval --db " + db + metadata() + " -o " + (out_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_GE(compare(out_ / "res", "reference", "deepfashion"), 20);
    EXPECT_GE(compare(out_ / "res", "reference", "movie_posters"), 10);
    EXPECT_GE(compare(out_ / "res", "sorted", "cub200"), 5);  // and the setting says "sorted"
    const json cub =
        read_json(out_ / "res" / "cub200-m-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last.json");
    EXPECT_NE(cub["results"]["bird species"]["row_order"].get<std::string>().find("store keeps no folder order"),
              std::string::npos);
}

// Metadata rows whose vector file is missing: evaluate.py stops on the setting; dior scores the
// rest and lists them. --kmeans-seeds 0 leaves the spread out; --no-clustering all of k-means.
TEST_F(EvalOrder, MissingVectorsAreListedAndSeedsCanBeTurnedOff) {
    const std::string setting = "movie_posters-m-describe-movie_genre-num_layer=-1-num_token=-1-embedsrc=input_last";
    fs::create_directories(out_ / "tree");
    fs::copy(trees() / "embeddings" / setting, out_ / "tree" / setting);
    std::vector<std::string> removed;
    for (const auto & e : fs::directory_iterator(out_ / "tree" / setting)) {
        if (removed.size() < 2 && e.path().filename().string().rfind("tt", 0) == 0) {
            removed.push_back(e.path().filename().string());
        }
    }
    ASSERT_EQ(removed.size(), 2u);
    for (const auto & f : removed) {
        fs::remove(out_ / "tree" / setting / f);
    }
    auto r = dior("eval --kmeans-seeds 0 --embedding-dir " + (out_ / "tree").string() + metadata() + " -o " +
                  (out_ / "res").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("2 metadata rows have no vector"), std::string::npos) << r.output;
    json g = read_json(out_ / "res" / (setting + ".json"))["results"]["movie genre"];
    EXPECT_EQ(g["missing"], 2);
    EXPECT_EQ(g["images"].get<size_t>() + 2, expected_["settings"][setting]["movie genre"]["reference"]["images"]);
    EXPECT_FALSE(g.contains("NMI_over_seeds"));
    EXPECT_TRUE(std::isfinite(g["NMI"].get<double>()));

    r = dior("eval --no-clustering --embedding-dir " + (out_ / "tree").string() + metadata() + " -o " +
             (out_ / "res2").string());
    ASSERT_EQ(r.status, 0) << r.output;
    g = read_json(out_ / "res2" / (setting + ".json"))["results"]["movie genre"];
    EXPECT_FALSE(g.contains("NMI_over_seeds"));
}

}  // namespace
