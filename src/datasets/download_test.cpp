// download_dataset and check_dataset against a dataset host on loopback, with small archives
// built here (libarchive): the layout the reference's script makes, checksums, resumed transfers,
// damaged and hostile archives, and the check against the labels.
#include "../../tests/support/fake_hub.h"
#include "dior.h"

#include <archive.h>
#include <archive_entry.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <set>

namespace fs = std::filesystem;
using dior::test::fake_hub;

namespace {

// An archive in memory: "tar.gz" or "zip", of (path, bytes) entries in order.
std::string make_archive(const std::string & kind, const std::vector<std::pair<std::string, std::string>> & files) {
    archive * a = archive_write_new();
    if (kind == "zip") {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
    }
    std::vector<char> buf(4 << 20);
    size_t            used = 0;
    archive_write_open_memory(a, buf.data(), buf.size(), &used);
    for (const auto & [path, bytes] : files) {
        archive_entry * e = archive_entry_new();
        archive_entry_set_pathname(e, path.c_str());
        archive_entry_set_size(e, (la_int64_t)bytes.size());
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, bytes.data(), bytes.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return std::string(buf.data(), used);
}

std::string sha256_of(const std::string & bytes) {
    dior::digest d("sha256");
    d.update(bytes.data(), bytes.size());
    return d.hex();
}

std::set<std::string> names_in(const fs::path & dir) {
    std::set<std::string> out;
    for (const auto & e : fs::directory_iterator(dir)) {
        out.insert(e.path().filename().string());
    }
    return out;
}

std::string read_all(const fs::path & p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// CUB_200_2011 in miniature: 102 numbered class folders of two images each, and other files.
std::string cub_archive(std::set<std::string> & test_images) {
    std::vector<std::pair<std::string, std::string>> files = {
        { "attributes.txt", "1 has_bill_shape::dagger\n" },
        { "CUB_200_2011/README", "readme" },
        { "CUB_200_2011/images.txt", "1 001.A/A_0001_1.jpg\n" },
    };
    for (int c = 1; c <= 102; ++c) {
        char cls[32];
        std::snprintf(cls, sizeof(cls), "%03d.Species_%d", c, c);
        for (int i = 0; i < 2; ++i) {
            const std::string name = "Species_" + std::to_string(c) + "_000" + std::to_string(i) + "_" +
                                     std::to_string(100 * c + i) + ".jpg";
            files.push_back({ std::string("CUB_200_2011/images/") + cls + "/" + name, "jpeg " + name });
            if (c > 2) {
                test_images.insert(name);
            }
        }
    }
    files.push_back({ "CUB_200_2011/images/050.Species_50/notes.txt", "not an image" });
    return make_archive("tar.gz", files);
}

class Datasets : public ::testing::Test {
  protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("dior-datasets-test-" + std::to_string(getpid()) + "-" +
                                           ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir);
    }

    void TearDown() override { fs::remove_all(dir); }

    dior::dataset_download_options opts(const std::string & file, const std::string & sha = "") {
        dior::dataset_download_options o;
        o.datasets_dir = dir.string();
        o.url          = host.base() + "/files/" + file;
        o.sha256       = sha;
        return o;
    }

    fake_hub host;
    fs::path dir;
};

TEST_F(Datasets, Cub200KeepsTheLast100ClassesFlat) {
    std::set<std::string> expected;
    const std::string     tgz                = cub_archive(expected);
    host.plain["CUB_200_2011.tgz"]           = { tgz };
    uint64_t                       last_done = 0;
    dior::dataset_download_options o         = opts("CUB_200_2011.tgz", sha256_of(tgz));
    o.progress                               = [&](const std::string &, uint64_t done, uint64_t) { last_done = done; };
    const dior::dataset_download_result r    = dior::download_dataset("cub200", o);
    EXPECT_FALSE(r.already);
    EXPECT_TRUE(r.manual_steps.empty());
    EXPECT_EQ(r.folder, (dir / "cub200").string());
    EXPECT_EQ(r.images, 200u);
    EXPECT_EQ(names_in(dir / "cub200"), expected);
    EXPECT_EQ(read_all(dir / "cub200" / "Species_3_0001_301.jpg"), "jpeg Species_3_0001_301.jpg");
    EXPECT_EQ(last_done, tgz.size());
    // nothing else is left beside the dataset: no archive, no staging folder
    EXPECT_EQ(names_in(dir), std::set<std::string>{ "cub200" });

    // the check: 100 species, 200 images where the reference has 5924
    const dior::dataset_check_result c = dior::check_dataset("cub200", dir.string(), {});
    EXPECT_EQ(c.images, 200u);
    EXPECT_EQ(c.expected, 5924u);
    EXPECT_FALSE(c.ok());
    ASSERT_FALSE(c.notes.empty());
    EXPECT_EQ(c.notes.front(), "100 species (classes 101-200 are 100)");

    // a second download finds it there and asks the host nothing
    const size_t asked = host.requests().size();
    EXPECT_TRUE(dior::download_dataset("cub200", o).already);
    EXPECT_EQ(host.requests().size(), asked);
}

TEST_F(Datasets, ThePublishedChecksumGuardsTheOriginalArchive) {
    std::set<std::string> expected;
    host.plain["CUB_200_2011.tgz"] = { cub_archive(expected) };
    // a mirror without --sha256 must serve the archive whose MD5 the publishers list: this is not it
    try {
        dior::download_dataset("cub200", opts("CUB_200_2011.tgz"));
        FAIL();
    } catch (const dior::error & e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("97eceeb196236b17998738112f37df78"), std::string::npos) << msg;
        EXPECT_NE(msg.find("removed"), std::string::npos) << msg;
    }
    EXPECT_FALSE(fs::exists(dir / "cub200"));
    EXPECT_FALSE(fs::exists(dir / ".downloads" / "CUB_200_2011.tgz"));
    // and a wrong --sha256 is refused the same way
    EXPECT_THROW(dior::download_dataset("cub200", opts("CUB_200_2011.tgz", std::string(64, '0'))), dior::error);
    EXPECT_FALSE(fs::exists(dir / "cub200"));
}

TEST_F(Datasets, ABrokenTransferIsResumed) {
    std::set<std::string> expected;
    const std::string     tgz             = cub_archive(expected);
    host.plain["c.tgz"]                   = { tgz };
    host.plain["c.tgz"].cut_times         = 2;
    host.plain["c.tgz"].cut_after         = tgz.size() / 3;
    const dior::dataset_download_result r = dior::download_dataset("cub200", opts("c.tgz", sha256_of(tgz)));
    EXPECT_EQ(r.images, 200u);
    size_t ranged = 0;
    for (const auto & q : host.requests()) {
        ranged += !q.range.empty();
    }
    EXPECT_EQ(ranged, 2u);
}

TEST_F(Datasets, ADamagedArchiveLeavesNoFolder) {
    std::set<std::string> expected;
    const std::string     cut = cub_archive(expected).substr(0, 2000);
    host.plain["bad.tgz"]     = { cut };
    try {
        dior::download_dataset("cub200", opts("bad.tgz", sha256_of(cut)));
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir / "cub200"));
    // an archive without the dataset's images is no dataset either
    const std::string other = make_archive("tar.gz", { { "readme.txt", "hello" } });
    host.plain["other.tgz"] = { other };
    EXPECT_THROW(dior::download_dataset("cub200", opts("other.tgz", sha256_of(other))), dior::error);
    EXPECT_FALSE(fs::exists(dir / "cub200"));
}

TEST_F(Datasets, MoviePostersFlattenedAndHostileNamesStayInside) {
    const std::string zip = make_archive(
        "zip", {
                   { "Movie_Poster_Dataset/1980/tt0080339.jpg", "poster 1" },
                   { "Movie_Poster_Dataset/1981/tt0082971.jpg", "poster 2" },
                   { "Movie_Poster_Dataset/1982/tt0080339.jpg", "a later copy" },  // the first keeps its name
                   { "Movie_Poster_Dataset/1981/list.txt", "not an image" },
                   { "../../escape.jpg", "outside" },
                   { "top.png", "at the top" },
                   { "Movie_Poster_Dataset/1983/top.png", "loses to the top-level file" },
               });
    host.plain["posters.zip"] = { zip };
    const dior::dataset_download_result r =
        dior::download_dataset("movie_posters", opts("posters.zip", sha256_of(zip)));
    EXPECT_EQ(names_in(dir / "movie_posters"),
              (std::set<std::string>{ "tt0080339.jpg", "tt0082971.jpg", "escape.jpg", "top.png" }));
    EXPECT_EQ(read_all(dir / "movie_posters" / "tt0080339.jpg"), "poster 1");
    EXPECT_EQ(read_all(dir / "movie_posters" / "top.png"), "at the top");
    EXPECT_FALSE(fs::exists(dir.parent_path() / "escape.jpg"));
    EXPECT_EQ(r.images, 4u);

    // the check against a metadata table of three films: one missing, two extra
    const fs::path meta = dir / "meta";
    fs::create_directories(meta);
    std::ofstream(meta / "movie_posters_metadata.tsv") << "imdbID\tGenre\tCountry\ntt0080339\tDrama\tUSA\n"
                                                          "tt0082971\tAction\tUSA\ntt0099999\tComedy\tN/A\n";
    dior::label_sources src;
    src.metadata_dir                   = meta.string();
    const dior::dataset_check_result c = dior::check_dataset("movie_posters", dir.string(), src);
    EXPECT_EQ(c.expected, 3u);
    EXPECT_EQ(c.missing, std::vector<std::string>{ "tt0099999.jpg" });
    EXPECT_EQ(c.extra, (std::vector<std::string>{ "escape.jpg", "top.png" }));
    EXPECT_FALSE(c.ok());
    fs::remove(dir / "movie_posters" / "escape.jpg");
    fs::remove(dir / "movie_posters" / "top.png");
    std::ofstream(dir / "movie_posters" / "tt0099999.jpg") << "poster 3";
    EXPECT_TRUE(dior::check_dataset("movie_posters", dir.string(), src).ok());
}

TEST_F(Datasets, DeepfashionIsFlattenedFromTheZipTheUserPutThere) {
    // nothing there: the manual steps, naming the folder
    dior::dataset_download_options o;
    o.datasets_dir                  = dir.string();
    dior::dataset_download_result r = dior::download_dataset("deepfashion", o);
    EXPECT_NE(r.manual_steps.find((dir / "deepfashion" / "img.zip").string()), std::string::npos) << r.manual_steps;
    EXPECT_EQ(r.images, 0u);
    // img.zip in place: img/CATEGORY/img_N.jpg -> CATEGORY-img_N.jpg, the metadata's names
    std::ofstream(dir / "deepfashion" / "img.zip", std::ios::binary)
        << make_archive("zip", { { "img/Floral_Print_Shirt_Dress/img_00000065.jpg", "a" },
                                 { "img/Butterfly_Sleeve_Sheath_Dress/img_00000034.jpg", "b" },
                                 { "img/Odd_Thing/img_00000001.jpg", "c" },
                                 { "img/readme.txt", "d" } });
    r = dior::download_dataset("deepfashion", o);
    EXPECT_TRUE(r.manual_steps.empty()) << r.manual_steps;
    EXPECT_EQ(r.images, 3u);
    EXPECT_EQ(read_all(dir / "deepfashion" / "Floral_Print_Shirt_Dress-img_00000065.jpg"), "a");
    // checked against the shipped metadata: 2 of its 4000 are there, one image has no label
    const dior::dataset_check_result c = dior::check_dataset("deepfashion", dir.string(), {});
    EXPECT_EQ(c.images, 3u);
    EXPECT_EQ(c.expected, 4000u);
    EXPECT_EQ(c.missing.size(), 3998u);
    EXPECT_EQ(c.extra, std::vector<std::string>{ "Odd_Thing-img_00000001.jpg" });
    // a second run: already there
    EXPECT_TRUE(dior::download_dataset("deepfashion", o).already);

    // or the img/ tree unpacked by hand
    fs::remove_all(dir / "deepfashion");
    fs::create_directories(dir / "deepfashion" / "img" / "Striped_Tee");
    std::ofstream(dir / "deepfashion" / "img" / "Striped_Tee" / "img_00000007.jpg") << "e";
    r = dior::download_dataset("deepfashion", o);
    EXPECT_EQ(names_in(dir / "deepfashion"), (std::set<std::string>{ "img", "Striped_Tee-img_00000007.jpg" }));
    EXPECT_EQ(r.images, 1u);
}

TEST_F(Datasets, ManualDatasetsAndUnknownNames) {
    dior::dataset_download_options o;
    o.datasets_dir = dir.string();
    EXPECT_NE(dior::download_dataset("cars196", o).manual_steps.find("Kaggle"), std::string::npos);
    EXPECT_NE(dior::download_dataset("synthetic_cars", o).manual_steps.find(dir.string()), std::string::npos);
    EXPECT_THROW(dior::download_dataset("imagenet", o), dior::error);
    EXPECT_THROW(dior::check_dataset("imagenet", dir.string(), {}), dior::error);
    o.url = "http://127.0.0.1:9/x.zip";
    EXPECT_THROW(dior::download_dataset("cars196", o), dior::error);
    // an unreachable host: an error naming the address, and nothing half-made
    try {
        dior::download_dataset("movie_posters", o);
        FAIL();
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:9"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir / "movie_posters"));
    // a host that has no such file
    o.url = host.base() + "/files/none.zip";
    EXPECT_THROW(dior::download_dataset("movie_posters", o), dior::error);
    EXPECT_FALSE(fs::exists(dir / "movie_posters"));
}

}  // namespace
