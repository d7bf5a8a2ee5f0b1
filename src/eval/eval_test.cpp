#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace fs = std::filesystem;

namespace {

std::vector<int> read_ints(const fs::path & p) {
    std::ifstream    f(p);
    std::vector<int> out;
    for (long long v; f >> v;) {
        out.push_back((int)v);
    }
    return out;
}

// Hand-computed: 4 points on a line, labels A A B A.
TEST(Retrieval, SmallCaseByHand) {
    dior::matrix x;
    x.rows = 4;
    x.cols = 1;
    x.data = { 0.0f, 1.0f, 2.0f, 10.0f };
    dior::eval_params p;
    p.clustering   = false;
    const auto acc = dior::evaluate(x, { 0, 0, 1, 0 }, p);
    // R = 2 for each A; B is a lone label and left out.
    // q0: neighbours 1(A) 2(B) 3(A)       -> AP@2 = (1/1)/2 = 0.5,  P@1 = 1
    // q1: neighbours 0 / 2 tie at 1 -> 0(A) first (index order), then 2(B) -> AP@2 = 0.5, P@1 = 1
    // q3: neighbours 2(B) 1(A) 0(A)      -> AP@2 = (1/2)/2 = 0.25, P@1 = 0
    EXPECT_EQ(acc.n_queries, 3u);
    EXPECT_DOUBLE_EQ(acc.mean_average_precision_at_r, (0.5 + 0.5 + 0.25) / 3);
    EXPECT_DOUBLE_EQ(acc.precision_at_1, 2.0 / 3);
}

TEST(Retrieval, KnnLeavesOutTheQueryAndOrdersTiesByIndex) {
    dior::matrix x;
    x.rows = 5;
    x.cols = 2;
    x.data = { 0, 0, 1, 0, 0, 1, -1, 0, 0, 0 };  // row 4 duplicates row 0
    std::vector<int64_t> nn;
    dior::knn(x, 4, nn);
    EXPECT_EQ(std::vector<int64_t>(nn.begin(), nn.begin() + 4), (std::vector<int64_t>{ 4, 1, 2, 3 }));
    EXPECT_EQ(std::vector<int64_t>(nn.begin() + 16, nn.end()), (std::vector<int64_t>{ 0, 1, 2, 3 }));
}

// The rows scored and their order: the metadata's order (a name listed twice scored twice, names
// without a vector counted), a folder's listing, or names sorted.
TEST(Rows, ReferenceOrderFollowsTheMetadataOrTheListing) {
    dior::aspect_labels meta;
    meta.rows_from = "m.csv";
    meta.rows      = { { "c.json", "x" }, { "a.json", "y" }, { "gone.json", "x" }, { "c.json", "z" } };
    for (const auto & [n, l] : meta.rows) {
        meta.by_name[n] = l;
    }
    const std::vector<std::string> images = { "/d/b.jpg", "/d/a.jpg", "/d/c.jpg" };
    auto                           r      = dior::rows_to_score(meta, images, dior::row_order::reference, false);
    EXPECT_EQ(r.rows, (std::vector<size_t>{ 2, 1, 2 }));
    EXPECT_EQ(r.labels, (std::vector<std::string>{ "x", "y", "z" }));
    EXPECT_EQ(r.unlabeled, (std::vector<std::string>{ "/d/b.jpg" }));
    EXPECT_EQ(r.missing, (std::vector<std::string>{ "gone.json" }));
    EXPECT_NE(r.order.find("m.csv"), std::string::npos);
    r = dior::rows_to_score(meta, images, dior::row_order::sorted, false);
    EXPECT_EQ(r.rows, (std::vector<size_t>{ 1, 2 }));  // a, c; c with its later label
    EXPECT_EQ(r.labels, (std::vector<std::string>{ "y", "z" }));

    dior::aspect_labels names;  // labels from file names (cub200): no metadata rows
    names.by_name = { { "b.json", "p" }, { "a.json", "q" }, { "c.json", "p" } };
    r             = dior::rows_to_score(names, images, dior::row_order::reference, true);
    EXPECT_EQ(r.rows, (std::vector<size_t>{ 0, 1, 2 }));  // as listed
    EXPECT_NE(r.order.find("listing"), std::string::npos);
    r = dior::rows_to_score(names, images, dior::row_order::reference, false);
    EXPECT_EQ(r.rows, (std::vector<size_t>{ 1, 0, 2 }));  // a store: by name, and it says why
    EXPECT_NE(r.order.find("store"), std::string::npos);
}

// k-means from other seeds: each seed's NMI / AMI is that of faiss' clustering from that seed, and
// on overlapping clusters the seeds do not all agree.
TEST(Clustering, SpreadOverSeeds) {
    dior::matrix x;
    x.rows = 200;
    x.cols = 2;
    std::vector<int> labels;
    for (size_t i = 0; i < x.rows; ++i) {
        x.data.push_back((float)(i % 5) * 0.8f + (float)std::sin((double)i * 12.9898));
        x.data.push_back((float)std::cos((double)i * 78.233));
        labels.push_back((int)(i % 5));
    }
    dior::eval_params p;
    p.spread_seeds = { 1234, 7, 99, 5 };
    const auto acc = dior::evaluate(x, labels, p);
    ASSERT_EQ(acc.NMI_by_seed.size(), 4u);
    ASSERT_EQ(acc.AMI_by_seed.size(), 4u);
    EXPECT_DOUBLE_EQ(acc.NMI_by_seed[0], acc.NMI);  // the same seed as the main value
    std::set<double> distinct;
    for (size_t i = 0; i < p.spread_seeds.size(); ++i) {
        const auto c = dior::kmeans(x, 5, p.kmeans_iter, p.spread_seeds[i]);
        EXPECT_DOUBLE_EQ(acc.NMI_by_seed[i], dior::normalized_mutual_info(labels, c)) << p.spread_seeds[i];
        EXPECT_DOUBLE_EQ(acc.AMI_by_seed[i], dior::adjusted_mutual_info(labels, c)) << p.spread_seeds[i];
        distinct.insert(acc.NMI_by_seed[i]);
    }
    EXPECT_GE(distinct.size(), 2u) << "every seed gave the same clustering: the case shows no spread";
    p.clustering = false;
    EXPECT_TRUE(dior::evaluate(x, labels, p).NMI_by_seed.empty());
}

TEST(Clustering, MutualInformationEdgeCases) {
    EXPECT_DOUBLE_EQ(dior::normalized_mutual_info({ 1, 1, 1 }, { 5, 5, 5 }), 1.0);
    EXPECT_DOUBLE_EQ(dior::adjusted_mutual_info({ 1, 1, 1 }, { 5, 5, 5 }), 1.0);
    EXPECT_NEAR(dior::normalized_mutual_info({ 0, 0, 1, 1 }, { 1, 1, 0, 0 }), 1.0, 1e-12);
    EXPECT_NEAR(dior::adjusted_mutual_info({ 0, 0, 1, 1 }, { 7, 7, 3, 3 }), 1.0, 1e-12);
    EXPECT_DOUBLE_EQ(dior::normalized_mutual_info({ 0, 0, 1, 1 }, { 0, 1, 0, 1 }), 0.0);
}

// How far P@1 and mAP@R may be from PML's: only a query with a bit-identical neighbour whose label
// differs from some other member of its group of duplicates can score differently, because the
// order among exact duplicates follows float rounding (faiss' GEMM vs ours) and PML drops the first
// neighbour faiss returns as "the query itself". Each such query moves either metric by at most
// 1 / (number of queries).
double duplicate_bound(const dior::matrix & x, const std::vector<int> & labels) {
    std::map<std::vector<float>, std::vector<size_t>> groups;
    for (size_t i = 0; i < x.rows; ++i) {
        groups[std::vector<float>(x.data.begin() + (long)(i * x.cols), x.data.begin() + (long)((i + 1) * x.cols))]
            .push_back(i);
    }
    std::map<int, size_t> count;
    for (int l : labels) {
        ++count[l];
    }
    size_t n_queries = 0, n_affected = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
        n_queries += count[labels[i]] > 1;
    }
    for (const auto & [v, rows] : groups) {
        bool mixed = false;
        for (size_t r : rows) {
            mixed |= labels[r] != labels[rows[0]];
        }
        if (rows.size() > 1 && mixed) {
            for (size_t r : rows) {
                n_affected += count[labels[r]] > 1;
            }
        }
    }
    return n_queries ? (double)n_affected / (double)n_queries : 0.0;
}

// pytorch-metric-learning 2.9 itself, run by tests/oracle/pml_cases.py on the same vectors.
TEST(PmlOracle, MetricsMatchPytorchMetricLearning) {
    const fs::path dir = dior::test::pml_cases_dir();
    std::ifstream  list(dir / "cases.txt");
    ASSERT_TRUE(list) << "no cases in " << dir;
    double worst_map = 0, worst_p1 = 0, worst_nmi = 0, worst_ami = 0, worst_mi_exact = 0;
    int    n = 0;
    for (std::string name; std::getline(list, name);) {
        const dior::matrix   x      = dior::read_npy((dir / (name + ".npy")).string());
        const auto           labels = read_ints(dir / (name + ".labels.txt"));
        const auto           theirs = read_ints(dir / (name + ".clusters.txt"));
        std::ifstream        jf(dir / (name + ".json"));
        const nlohmann::json want = nlohmann::json::parse(jf);
        const dior::accuracy acc  = dior::evaluate(x, labels);
        const double         d_map =
            std::fabs(acc.mean_average_precision_at_r - want["mean_average_precision_at_r"].get<double>());
        const double d_p1  = std::fabs(acc.precision_at_1 - want["precision_at_1"].get<double>());
        const double d_nmi = std::fabs(acc.NMI - want["NMI"].get<double>());
        const double d_ami = std::fabs(acc.AMI - want["AMI"].get<double>());
        // NMI / AMI of the very cluster labels PML's k-means produced: scikit-learn's formulas exactly.
        const double d_exact = std::max(
            std::fabs(dior::normalized_mutual_info(labels, theirs) - want["sklearn_NMI_of_clusters"].get<double>()),
            std::fabs(dior::adjusted_mutual_info(labels, theirs) - want["sklearn_AMI_of_clusters"].get<double>()));
        std::printf("%-15s map@r %.6f (PML %.6f)  p@1 %.6f (PML %.6f)  NMI %.4f (%.4f)  AMI %.4f (%.4f)\n",
                    name.c_str(), acc.mean_average_precision_at_r, want["mean_average_precision_at_r"].get<double>(),
                    acc.precision_at_1, want["precision_at_1"].get<double>(), acc.NMI, want["NMI"].get<double>(),
                    acc.AMI, want["AMI"].get<double>());
        // Exact (1e-6) without duplicates; with them, within the bound stated in the README.
        const double bound = duplicate_bound(x, labels);
        if (bound > 0) {
            std::printf("%-15s bit-identical vectors of mixed labels: bound %.4f, |diff| map@r %.2e p@1 %.2e\n",
                        name.c_str(), bound, d_map, d_p1);
        }
        EXPECT_LE(d_map, 1e-6 + bound) << name;
        EXPECT_LE(d_p1, 1e-6 + bound) << name;
        EXPECT_LE(d_nmi, 0.02) << name;
        EXPECT_LE(d_ami, 0.02) << name;
        EXPECT_LE(d_exact, 1e-12) << name;
        worst_map      = std::max(worst_map, d_map);
        worst_p1       = std::max(worst_p1, d_p1);
        worst_nmi      = std::max(worst_nmi, d_nmi);
        worst_ami      = std::max(worst_ami, d_ami);
        worst_mi_exact = std::max(worst_mi_exact, d_exact);
        ++n;
    }
    std::printf(
        "worst |diff| vs PML over %d cases: map@r %.3g, p@1 %.3g, NMI %.3g, AMI %.3g; "
        "NMI/AMI formulas on PML's own clusters %.3g\n",
        n, worst_map, worst_p1, worst_nmi, worst_ami, worst_mi_exact);
    EXPECT_GE(n, 8);
}

}  // namespace
