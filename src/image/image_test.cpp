#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <sstream>

namespace fs = std::filesystem;

TEST(FitSize, LongerSideBecomesMaxSizeOtherIsTruncated) {
    int w = 0, h = 0;
    dior::fit_size(1000, 500, 700, w, h);
    EXPECT_EQ(w, 700);
    EXPECT_EQ(h, 350);
    dior::fit_size(500, 1001, 700, w, h);
    EXPECT_EQ(w, 349);  // 500 * 700 / 1001 = 349.65 -> 349
    EXPECT_EQ(h, 700);
    dior::fit_size(1401, 7, 700, w, h);
    EXPECT_EQ(w, 700);
    EXPECT_EQ(h, 3);
    dior::fit_size(3000, 1, 700, w, h);
    EXPECT_EQ(h, 1);  // never 0
}

TEST(FitSize, NeverUpscales) {
    int w = 0, h = 0;
    dior::fit_size(700, 300, 700, w, h);
    EXPECT_EQ(w, 700);
    EXPECT_EQ(h, 300);
    dior::fit_size(56, 84, 700, w, h);
    EXPECT_EQ(w, 56);
    EXPECT_EQ(h, 84);
    dior::fit_size(5000, 4000, 0, w, h);  // 0: keep the size
    EXPECT_EQ(w, 5000);
}

TEST(Decode, EmptyDataNamesTheFile) {
    try {
        dior::decode_image(nullptr, 0, "photos/empty.jpg", 700);
        FAIL() << "no error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("photos/empty.jpg"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
    }
}

TEST(Decode, TextIsNotAnImage) {
    const std::string text = "this is a text file, not a picture\n";
    EXPECT_THROW(dior::decode_image((const uint8_t *)text.data(), text.size(), "notes.png", 700), dior::error);
}

TEST(Decode, CorruptJpegIsRefused) {
    const std::string bytes = dior::test::corrupt_jpeg();
    try {
        dior::decode_image((const uint8_t *)bytes.data(), bytes.size(), "bad.jpg", 700);
        FAIL() << "no error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("bad.jpg: cannot decode image"), std::string::npos) << e.what();
    }
}

// A top-down BMP (negative height in its header) of 16 x 16,777,010 pixels, 782 bytes: refused by
// the pixel limit from its header at once (libFuzzer found it taking 35 s to decode: stb_image's
// header query reports the height negative, and the limit was compared with a negative product).
TEST(Decode, TopDownBmpBombIsRefusedFromItsHeader) {
    std::string bmp(782, '\0');
    const auto  put32 = [&](size_t at, uint32_t v) {
        for (int i = 0; i < 4; ++i) {
            bmp[at + i] = (char)((v >> (8 * i)) & 0xff);
        }
    };
    bmp[0] = 'B';
    bmp[1] = 'M';
    put32(2, (uint32_t)bmp.size());
    put32(10, 54);
    put32(14, 40);
    put32(18, 16);                   // width
    put32(22, (uint32_t)-16777010);  // height: top-down
    bmp[26] = 1;                     // planes
    bmp[28] = 24;                    // bits per pixel
    for (int64_t max_pixels : { (int64_t)65536, dior::image_limits{}.max_pixels }) {
        dior::image_limits limits;
        limits.max_pixels = max_pixels;
        try {
            dior::decode_image((const uint8_t *)bmp.data(), bmp.size(), "tall.bmp", 700, limits);
            FAIL() << "no error";
        } catch (const dior::error & e) {
            EXPECT_NE(std::string(e.what()).find("tall.bmp: image of 16 x 16777010 = 268432160 pixels"),
                      std::string::npos)
                << e.what();
        }
    }
}

TEST(Load, MissingFileNamesIt) {
    EXPECT_THROW(dior::load_image("/nonexistent/dir/x.png"), dior::error);
}

TEST(Load, BmpPixelsRoundTripAndLargeImagesAreDownscaled) {
    const auto dir = fs::temp_directory_path() / "dior_image_test";
    fs::create_directories(dir);
    const auto rgb = dior::test::pattern_rgb(37, 23, 1);
    dior::test::write_bmp((dir / "small.bmp").string(), 37, 23, rgb);
    const dior::image small = dior::load_image((dir / "small.bmp").string());
    EXPECT_EQ(small.width, 37);
    EXPECT_EQ(small.height, 23);
    EXPECT_EQ(small.rgb, rgb);

    dior::test::write_bmp((dir / "big.bmp").string(), 1000, 400, dior::test::pattern_rgb(1000, 400, 2));
    const dior::image big = dior::load_image((dir / "big.bmp").string(), 700);
    EXPECT_EQ(big.width, 700);
    EXPECT_EQ(big.height, 280);
    EXPECT_EQ(big.rgb.size(), 700u * 280u * 3u);
    fs::remove_all(dir);
}

TEST(Lanczos, UniformImageStaysUniform) {
    dior::image img;
    img.width  = 90;
    img.height = 70;
    img.rgb.assign(90 * 70 * 3, 0);
    for (size_t i = 0; i < img.rgb.size(); i += 3) {
        img.rgb[i]     = 10;
        img.rgb[i + 1] = 128;
        img.rgb[i + 2] = 250;
    }
    const dior::image out = dior::resize_lanczos(img, 31, 17);
    ASSERT_EQ(out.rgb.size(), 31u * 17u * 3u);
    for (size_t i = 0; i < out.rgb.size(); i += 3) {
        ASSERT_EQ(out.rgb[i], 10);
        ASSERT_EQ(out.rgb[i + 1], 128);
        ASSERT_EQ(out.rgb[i + 2], 250);
    }
}

// Oracle: Pillow decodes, converts to RGB and resizes (LANCZOS) the files that
// tests/oracle/pil_images.py wrote; load_image() must give the same bytes.
TEST(PillowOracle, LoadImageMatchesPillowBitForBit) {
    const std::string dir = dior::test::pil_cases_dir();
    std::ifstream     list(fs::path(dir) / "cases.txt");
    ASSERT_TRUE(list) << "no cases.txt in " << dir;
    int n_cases = 0;
    for (std::string line; std::getline(list, line);) {
        std::istringstream ss(line);
        std::string        src, expected;
        int                max_size = 0, w = 0, h = 0;
        ss >> src >> max_size >> expected >> w >> h;
        const dior::image          img = dior::load_image((fs::path(dir) / src).string(), max_size);
        std::ifstream              f(fs::path(dir) / expected, std::ios::binary);
        const std::vector<uint8_t> want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        EXPECT_EQ(img.width, w) << src;
        EXPECT_EQ(img.height, h) << src;
        ASSERT_EQ(img.rgb.size(), want.size()) << src;
        size_t n_diff = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            n_diff += img.rgb[i] != want[i];
        }
        EXPECT_EQ(n_diff, 0u) << src << ": " << n_diff << " of " << want.size() << " bytes differ from Pillow";
        ++n_cases;
    }
    EXPECT_GE(n_cases, 30);
}

// Oracle: Pillow's Image.resize(..., BILINEAR) of a 131x97 image to squares, up and down.
TEST(PillowOracle, BilinearMatchesPillowBitForBit) {
    const fs::path dir = dior::test::pil_cases_dir();
    std::ifstream  src_file(dir / "bilinear_131x97.rgb", std::ios::binary);
    dior::image    src;
    src.width  = 131;
    src.height = 97;
    src.rgb.assign(std::istreambuf_iterator<char>(src_file), std::istreambuf_iterator<char>());
    ASSERT_EQ(src.rgb.size(), 131u * 97u * 3u);
    std::ifstream list(dir / "bilinear.txt");
    int           n_cases = 0;
    for (int w = 0, h = 0; list >> w >> h; ++n_cases) {
        std::ifstream f(dir / ("bilinear_" + std::to_string(w) + "x" + std::to_string(h) + ".out"), std::ios::binary);
        const std::vector<uint8_t> want((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        EXPECT_EQ(dior::resize_bilinear(src, w, h).rgb, want) << w << "x" << h;
    }
    EXPECT_EQ(n_cases, 5);
}

// A JPEG cut short: libjpeg would pad it with grey and go on, Pillow refuses it ("image file is
// truncated"), and so does dior, naming the file.
TEST(PillowOracle, TruncatedJpegIsRefused) {
    const fs::path             src   = fs::path(dior::test::pil_cases_dir()) / "jpeg_420_1000x700.jpg";
    const std::vector<uint8_t> bytes = dior::read_file(src.string());
    ASSERT_GT(bytes.size(), 1000u);
    try {
        dior::decode_image(bytes.data(), bytes.size() / 2, "half.jpg", 0);
        FAIL() << "no error";
    } catch (const dior::error & e) {
        EXPECT_NE(std::string(e.what()).find("half.jpg: the JPEG file is truncated"), std::string::npos) << e.what();
    }
}

// Oracle: torch.nn.functional.interpolate(uint8, mode="bicubic", antialias=True), what Hugging
// Face's fast Qwen2-VL image processor resizes with (tests/oracle/torch_resize.py).
TEST(TorchOracle, ResizeBicubicTorchMatchesPyTorchBitForBit) {
    const fs::path dir = fs::path(DIOR_TEST_DATA_DIR) / "torch-resize";
    std::ifstream  list(dir / "cases.txt");
    ASSERT_TRUE(list) << "no cases.txt in " << dir;
    int n_cases = 0, n_pillow_differs = 0;
    for (std::string line; std::getline(list, line);) {
        std::istringstream ss(line);
        std::string        name;
        int                w = 0, h = 0, ow = 0, oh = 0;
        ss >> name >> w >> h >> ow >> oh;
        dior::image in;
        in.width  = w;
        in.height = h;
        in.rgb    = dior::read_file((dir / (name + ".in.rgb")).string());
        ASSERT_EQ(in.rgb.size(), (size_t)w * h * 3) << name;
        const std::vector<uint8_t> want = dior::read_file((dir / (name + ".out.rgb")).string());
        const dior::image          got  = dior::resize_bicubic_torch(in, ow, oh);
        ASSERT_EQ(got.width, ow);
        ASSERT_EQ(got.height, oh);
        ASSERT_EQ(got.rgb.size(), want.size()) << name;
        size_t n_diff = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            n_diff += got.rgb[i] != want[i];
        }
        EXPECT_EQ(n_diff, 0u) << name << " " << w << "x" << h << " -> " << ow << "x" << oh;
        n_pillow_differs += (ow != w || oh != h) && dior::resize_bicubic(in, ow, oh).rgb != want;
        ++n_cases;
    }
    EXPECT_GE(n_cases, 50);
    // The two bicubics are not the same function: Pillow's differs from torch's on most cases.
    EXPECT_GT(n_pillow_differs, n_cases / 2);
}
