#include "dior.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

dior::setting make_setting(const std::optional<std::string> & cond, int layer) {
    dior::setting s;
    s.dataset       = "cub200";
    s.model_id      = "Qwen/Qwen2.5-VL-7B-Instruct";
    s.model_sha256  = "aa";
    s.mmproj_sha256 = "bb";
    s.engine        = "test";
    s.prompt_type   = "describe";
    s.condition     = cond;
    s.prompt        = dior::instruction(dior::prompt_type::describe, cond);
    s.layer         = layer;
    s.n_embd        = 4;
    return s;
}

class Store : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = (fs::temp_directory_path() /
                 ("dior_store_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
                  std::to_string(getpid()) + ".db"))
                    .string();
        for (const char * ext : { "", "-wal", "-shm" }) {
            fs::remove(path_ + ext);
        }
    }

    void TearDown() override {
        for (const char * ext : { "", "-wal", "-shm" }) {
            fs::remove(path_ + ext);
        }
    }

    std::string path_;
};

TEST_F(Store, EqualSettingsShareAnIdAndAnyDifferenceMakesANewOne) {
    auto          st = dior::store::open(path_);
    const int64_t a  = st->add_setting(make_setting("bird species", -1));
    EXPECT_EQ(st->add_setting(make_setting("bird species", -1)), a);
    EXPECT_NE(st->add_setting(make_setting("bird species", 0)), a);
    EXPECT_NE(st->add_setting(make_setting(std::nullopt, -1)), a);
    auto other   = make_setting("bird species", -1);
    other.engine = "another build";
    EXPECT_NE(st->add_setting(other), a);
    EXPECT_EQ(st->settings().size(), 4u);
}

TEST_F(Store, VectorsRoundTripAndMissingTracksWhatIsStored) {
    const std::vector<float> v1 = { 1.0f, -0.0f, 3.5e-38f, 1e30f }, v2 = { 4, 5, 6, 7 };
    int64_t                  a = 0, b = 0;
    {
        auto st = dior::store::open(path_);
        a       = st->add_setting(make_setting("bird species", -1));
        b       = st->add_setting(make_setting(std::nullopt, -1));
        EXPECT_EQ(st->missing({ a, b }, "x/img1.png"), (std::vector<int64_t>{ a, b }));
        st->put_failure("x/img1.png", "cannot decode");
        EXPECT_EQ(st->failures().size(), 1u);
        st->put({ "x/img1.png", "h1", 10, 4, 3 }, { { a, v1 }, { b, v2 } });
        st->put({ "x/img0.png", "h0", 11, 5, 3 }, { { a, v2 } });
        EXPECT_TRUE(st->failures().empty());  // a success clears the failure
    }
    auto st = dior::store::open(path_);  // reopened: everything persisted
    EXPECT_TRUE(st->missing({ a, b }, "x/img1.png").empty());
    EXPECT_EQ(st->missing({ a, b }, "x/img0.png"), (std::vector<int64_t>{ b }));
    std::vector<std::string> paths;
    const dior::matrix       m = st->vectors(a, &paths);
    ASSERT_EQ(m.rows, 2u);
    EXPECT_EQ(m.cols, 4u);
    EXPECT_EQ(paths, (std::vector<std::string>{ "x/img0.png", "x/img1.png" }));  // ordered by path
    EXPECT_EQ(std::memcmp(m.data.data(), v2.data(), 16), 0);
    EXPECT_EQ(std::memcmp(m.data.data() + 4, v1.data(), 16), 0);
    EXPECT_EQ(st->images().size(), 2u);
    EXPECT_EQ(st->images()[1].width, 4);
}

TEST_F(Store, FileHashIsSha256OfTheContent) {
    const std::string f = (fs::temp_directory_path() / "dior_hash_me.bin").string();
    std::ofstream(f) << "abc";
    auto st = dior::store::open(path_);
    // SHA-256("abc"), FIPS 180-2 test vector.
    EXPECT_EQ(st->file_sha256(f), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(st->file_sha256(f), dior::sha256_hex("abc", 3));
    fs::remove(f);
}

TEST_F(Store, UnwritablePlaceGivesAClearError) {
    const std::string file = (fs::temp_directory_path() / "dior_not_a_dir").string();
    std::ofstream(file) << "x";
    try {
        dior::store::open(file + "/sub/embeddings.db");
        FAIL() << "no error";
    } catch (const dior::store_error & e) {
        EXPECT_NE(std::string(e.what()).find("cannot open store " + file + "/sub/embeddings.db"), std::string::npos)
            << e.what();
    }
    fs::remove(file);
}

TEST(Naming, ReferenceDirectoryNames) {
    auto s = make_setting("bird species", -1);
    EXPECT_EQ(dior::reference_dir_name(s),
              "cub200-Qwen_Qwen2.5-VL-7B-Instruct-describe-bird_species-num_layer=-1-num_token=-1-embedsrc=input_last");
    s.dataset     = "movie_posters";
    s.condition   = "movie's production country";
    s.prompt_type = "describe_unconstraint";
    s.layer       = 20;
    s.token       = 5;
    EXPECT_EQ(dior::reference_dir_name(s),
              "movie_posters-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-movie's_production_country-num_layer=20-"
              "num_token=5-embedsrc=input_last");
    s.dataset   = "synthetic_cars";
    s.condition = std::nullopt;
    EXPECT_EQ(dior::reference_dir_name(s),
              "synthetic_cars-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-None-num_layer=20-num_token=5-"
              "embedsrc=input_last");
}

TEST(Naming, ParseInvertsTheName) {
    const auto p = dior::parse_reference_dir_name(
        "movie_posters-Qwen_Qwen2.5-VL-7B-Instruct-describe_unconstraint-movie's_production_country-num_layer=-1-"
        "num_token=-1-embedsrc=input_last");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->dataset, "movie_posters");
    EXPECT_EQ(p->model_id, "Qwen_Qwen2.5-VL-7B-Instruct");
    EXPECT_EQ(p->prompt_type, "describe_unconstraint");
    EXPECT_EQ(p->condition, "movie's production country");
    EXPECT_EQ(p->layer, -1);
    EXPECT_EQ(p->source, "input_last");
    const auto n = dior::parse_reference_dir_name("cars196-m-express-None-num_layer=3-num_token=7-embedsrc=input_last");
    ASSERT_TRUE(n.has_value());
    EXPECT_FALSE(n->condition.has_value());
    EXPECT_EQ(n->token, 7);
    // The baselines' folders (SPEC 5 and 6)
    const auto c = dior::parse_reference_dir_name("cars196-openai_clip-vit-large-patch14-embedsrc=clip");
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->source, "clip");
    EXPECT_EQ(c->dataset, "cars196");
    EXPECT_EQ(c->model_id, "openai_clip-vit-large-patch14");
    EXPECT_FALSE(c->condition.has_value());
    EXPECT_EQ(dior::reference_dir_name(*c), "cars196-openai_clip-vit-large-patch14-embedsrc=clip");
    const auto i =
        dior::parse_reference_dir_name("movie_posters-openai_clip-vit-large-patch14-indirect-genre-num_components=128");
    ASSERT_TRUE(i.has_value());
    EXPECT_EQ(i->source, "indirect");
    EXPECT_EQ(i->condition, "movie genre");
    EXPECT_EQ(i->components, 128);
    EXPECT_EQ(dior::reference_dir_name(*i),
              "movie_posters-openai_clip-vit-large-patch14-indirect-genre-num_components=128");
    EXPECT_FALSE(dior::parse_reference_dir_name("cars196-something-else").has_value());
}

TEST(Datasets, RegistryAndListingRules) {
    const dior::dataset_info * d = dior::find_dataset("deepfashion");
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->aspects.size(), 5u);
    EXPECT_FALSE(d->aspects[0].has_value());
    EXPECT_EQ(dior::find_dataset("movie_posters")->aspects[2], "movie's production country");
    EXPECT_EQ(dior::find_dataset("nope"), nullptr);
    EXPECT_EQ(dior::datasets().size(), 5u);

    const fs::path dir = fs::temp_directory_path() / "dior_listing";
    fs::remove_all(dir);
    fs::create_directories(dir / "sub");
    for (const char * n : { "b.JPG", "a.png", "c.jpeg", "d.bmp", "e.gif", "f.txt", "g.webp", "sub/h.png" }) {
        std::ofstream(dir / n) << "x";
    }
    std::vector<std::string> names;
    for (const auto & p : dior::list_dataset_images(dir.string())) {
        names.push_back(fs::path(p).filename().string());
    }
    EXPECT_EQ(names, (std::vector<std::string>{ "a.png", "b.JPG", "c.jpeg", "d.bmp", "e.gif" }));
    fs::remove_all(dir);
    EXPECT_THROW(dior::list_dataset_images(dir.string()), dior::error);
}

}  // namespace
