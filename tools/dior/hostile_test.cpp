// Hostile input, signals and damaged stores (issue 9): every case ends in one clear `error:` line
// per bad thing, the documented exit status, and a store that holds exactly what it should and
// passes SQLite's integrity check. Never a crash, a hang or silent loss.
#include "../../tests/support/process.h"
#include "../../tests/support/test_images.h"
#include "../../tests/support/test_paths.h"
#include "dior.h"
#include "dior_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <map>
#include <set>
#include <sqlite3.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace fs = std::filesystem;
using dior::test::run_shell;

namespace {

std::string model_args(bool threads = true) {
    const std::string dir = dior::test::tiny_dir();
    return "-m " + dir + "/text.gguf --mmproj " + dir + "/mmproj.gguf" + (threads ? " -t 2" : "");
}

bool is_utf8(const std::string & s) {
    for (size_t i = 0; i < s.size();) {
        const size_t n = dior::utf8_length_at(s, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

std::string slurp(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string quote(const std::string & s) {  // for sh -c
    std::string q = "'";
    for (char c : s) {
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return q + "'";
}

// Every run is bounded in time: a hang fails the test instead of stalling the suite.
dior::test::run_result run(const std::string & args) {
    return run_shell("timeout 300 " + dior::test::dior_bin() + " " + args);
}

std::vector<std::string> error_lines(const std::string & out) {
    std::vector<std::string> lines;
    std::stringstream        ss(out);
    for (std::string line; std::getline(ss, line);) {
        if (line.rfind("error: ", 0) == 0) {
            lines.push_back(line);
        }
    }
    return lines;
}

// PNG header + a deflate stream of width x height grey pixels, all zero: a few hundred KB on disk,
// width * height * 3 bytes once decoded to RGB.
std::string png_bomb(uint32_t w, uint32_t h) {
    auto be32 = [](std::string & s, uint32_t v) {
        for (int i = 3; i >= 0; --i) {
            s.push_back((char)((v >> (8 * i)) & 0xff));
        }
    };
    auto chunk = [&](std::string & out, const char * type, const std::string & data) {
        be32(out, (uint32_t)data.size());
        std::string td = std::string(type, 4) + data;
        out += td;
        be32(out, (uint32_t)crc32(0, (const Bytef *)td.data(), (uInt)td.size()));
    };
    std::string png = "\x89PNG\r\n\x1a\n";
    std::string ihdr;
    be32(ihdr, w);
    be32(ihdr, h);
    ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey
    chunk(png, "IHDR", ihdr);
    z_stream z{};
    deflateInit(&z, 9);
    std::vector<unsigned char> row(w + 1, 0), buf(1 << 16);
    std::string                idat;
    for (uint32_t y = 0; y <= h; ++y) {
        z.next_in  = row.data();
        z.avail_in = y < h ? (uInt)row.size() : 0;
        do {
            z.next_out  = buf.data();
            z.avail_out = (uInt)buf.size();
            deflate(&z, y < h ? Z_NO_FLUSH : Z_FINISH);
            idat.append((const char *)buf.data(), buf.size() - z.avail_out);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    chunk(png, "IDAT", idat);
    chunk(png, "IEND", "");
    return png;
}

// A valid 8 x 8 JPEG (libjpeg's defaults: baseline, SOF0) whose frame header then claims w x h.
std::string jpeg_with_size(uint16_t w, uint16_t h) {
    jpeg_compress_struct c{};
    jpeg_error_mgr       e{};
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char * buf  = nullptr;
    unsigned long   size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width      = 8;
    c.image_height     = 8;
    c.input_components = 3;
    c.in_color_space   = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    std::vector<unsigned char> row(8 * 3, 100);
    JSAMPROW                   r = row.data();
    for (int y = 0; y < 8; ++y) {
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    std::string j((const char *)buf, size);
    free(buf);
    jpeg_destroy_compress(&c);
    for (size_t i = 0; i + 8 < j.size(); ++i) {
        if ((unsigned char)j[i] == 0xFF && (unsigned char)j[i + 1] == 0xC0) {
            j[i + 5] = (char)(h >> 8);
            j[i + 6] = (char)(h & 0xff);
            j[i + 7] = (char)(w >> 8);
            j[i + 8] = (char)(w & 0xff);
            break;
        }
    }
    return j;
}

struct store_summary {
    std::map<std::string, size_t> vectors;  // setting name -> vectors
    size_t                        images = 0;
    std::vector<std::string>      failures;
    std::vector<std::string>      check;
};

store_summary summarize(const std::string & db) {
    store_summary out;
    auto          st = dior::store::open(db, true);
    for (const auto & s : st->settings()) {
        out.vectors[dior::reference_dir_name(s.s)] = (size_t)s.n_vectors;
    }
    out.images = st->images().size();
    for (const auto & f : st->failures()) {
        out.failures.push_back(f.path);
    }
    out.check = st->check();
    return out;
}

class Hostile : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("dior_hostile_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
                std::to_string(getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "images");
        for (int i = 0; i < 2; ++i) {
            dior::test::write_bmp((dir_ / "images" / ("good" + std::to_string(i) + ".bmp")).string(), 40, 30,
                                  dior::test::pattern_rgb(40, 30, i));
        }
    }

    void TearDown() override { fs::remove_all(dir_); }

    std::string db() const { return (dir_ / "e.db").string(); }

    // extra may name its own -o/--out, or -t.
    std::string embed(const std::string & inputs, const std::string & extra = "") const {
        const bool own_out     = extra.find("-o ") != std::string::npos;
        const bool own_threads = extra.find("-t ") != std::string::npos;
        return "embed " + model_args(!own_threads) + " " + inputs + (own_out ? "" : " -o " + db()) + " " + extra;
    }

    fs::path dir_;
};

const std::vector<std::string> k_ok = { "ok" };

// 1, 2: a symlink loop, a dangling link and names with a newline or control characters inside a
// folder: one escaped error line each, the good images embedded, exit 2 (partial).
TEST_F(Hostile, BadFolderEntriesGiveOneEscapedLineEach) {
    const fs::path d = dir_ / "images";
    fs::create_symlink("loop.jpg", d / "loop.jpg");
    fs::create_symlink("nowhere.png", d / "dangling.png");
    dior::test::write_file((d / "new\nline.png").string(), "not a png");
    dior::test::write_file((d / "esc\x1b[31mred.jpg").string(), "not a jpeg");
    const auto r = run(embed(quote(d.string())));
    EXPECT_EQ(r.status, 2) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 4u) << r.output;
    const std::string all = lines[0] + lines[1] + lines[2] + lines[3];
    EXPECT_NE(all.find("loop.jpg: symbolic link loop"), std::string::npos) << all;
    EXPECT_NE(all.find("dangling.png: dangling symbolic link"), std::string::npos) << all;
    EXPECT_NE(all.find("new\\nline.png: cannot decode image"), std::string::npos) << all;
    EXPECT_NE(all.find("esc\\x1b[31mred.jpg: cannot decode image"), std::string::npos) << all;
    const auto s = summarize(db());
    EXPECT_EQ(s.images, 2u);
    EXPECT_EQ(s.failures.size(), 4u);
    EXPECT_EQ(s.check, k_ok);
}

// 2: an empty path among the inputs is one error line; the rest goes on.
TEST_F(Hostile, EmptyPathIsOneErrorLine) {
    const auto r = run(embed("'' " + (dir_ / "images" / "good0.bmp").string()));
    EXPECT_EQ(r.status, 2) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 1u) << r.output;
    EXPECT_EQ(lines[0], "error: '': empty file name");
    EXPECT_EQ(summarize(db()).images, 1u);
}

// 3: a FIFO (it would block a reader forever), a device and a 3 GiB sparse file are refused before
// anything is read.
TEST_F(Hostile, OnlyRegularFilesSizedBeforeReading) {
    const fs::path d = dir_ / "images";
    ASSERT_EQ(mkfifo((d / "fifo.jpg").c_str(), 0644), 0);
    { std::ofstream f(d / "sparse.png"); }
    fs::resize_file(d / "sparse.png", (uintmax_t)3 << 30);
    const auto r = run(embed(d.string() + " /dev/zero"));
    EXPECT_EQ(r.status, 2) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 3u) << r.output;
    const std::string all = lines[0] + "|" + lines[1] + "|" + lines[2];
    EXPECT_NE(all.find("fifo.jpg: not a regular file (a FIFO)"), std::string::npos) << all;
    EXPECT_NE(all.find("/dev/zero: not a regular file (a device)"), std::string::npos) << all;
    EXPECT_NE(all.find("sparse.png: file of 3221225472 bytes is larger than the limit of 1073741824 bytes"),
              std::string::npos)
        << all;
    const auto s = summarize(db());
    EXPECT_EQ(s.images, 2u);
    EXPECT_EQ(s.check, k_ok);
    // The limit is an option.
    const auto r2 = run(embed(d.string(), "--max-file-size 100 -o " + (dir_ / "small.db").string()));
    // the two BMPs are larger than 100 bytes too: nothing embedded, four lines and the summary one
    EXPECT_EQ(r2.status, 1) << r2.output;
    EXPECT_EQ(error_lines(r2.output).size(), 5u) << r2.output;
    EXPECT_NE(r2.output.find("error: none of the 4 images could be embedded"), std::string::npos) << r2.output;
}

// 4: decompression bombs are refused from their header, before their pixels are allocated; peak
// memory over a hostile folder stays within the stated bound.
TEST_F(Hostile, DecompressionBombsAreRefusedFromTheirHeader) {
    const fs::path d = dir_ / "images";
    dior::test::write_file((d / "bomb.png").string(), png_bomb(20000, 20000));
    dior::test::write_file((d / "bomb.jpg").string(), jpeg_with_size(60000, 60000));
    ASSERT_LT(fs::file_size(d / "bomb.png"), (uintmax_t)2 << 20);
    const auto r = run(embed(d.string(), "--image-max-size 0"));
    EXPECT_EQ(r.status, 2) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 2u) << r.output;
    EXPECT_NE(
        (lines[0] + lines[1]).find("bomb.png: image of 20000 x 20000 = 400000000 pixels is larger than the limit"),
        std::string::npos)
        << r.output;
    EXPECT_NE((lines[0] + lines[1]).find("bomb.jpg: image of 60000 x 60000"), std::string::npos) << r.output;
    EXPECT_EQ(summarize(db()).images, 2u);
    // Peak memory of everything this test ran (the largest child): the tiny model, two small
    // images and the refused bombs. Stated bound: 200 MiB (a decoded 20000 x 20000 bomb alone
    // would take 1.2 GB).
    struct rusage ru {};
    getrusage(RUSAGE_CHILDREN, &ru);
    std::printf("peak RSS of the run over the hostile folder: %.1f MiB\n", ru.ru_maxrss / 1024.0);
    EXPECT_LT(ru.ru_maxrss, 200L * 1024);
    // A lower limit is an option; so is none.
    const auto r2 = run(embed((d / "good0.bmp").string(), "--max-image-pixels 100 -o " + (dir_ / "x.db").string()));
    EXPECT_EQ(r2.status, 1) << r2.output;
    EXPECT_NE(r2.output.find("image of 40 x 30 = 1200 pixels is larger than the limit of 100"), std::string::npos)
        << r2.output;
}

// 6: an empty store path is refused (SQLite would silently use a temporary database).
TEST_F(Hostile, EmptyStorePathIsRefused) {
    const auto r = run("embed " + model_args() + " " + (dir_ / "images").string() + " -o ''");
    EXPECT_EQ(r.status, 1) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 1u) << r.output;
    EXPECT_NE(lines[0].find("-o/--out is empty"), std::string::npos) << lines[0];
    for (const char * cmd : { "status --db ''", "export --db '' --npy x", "eval --db ''" }) {
        const auto q = run(cmd);
        EXPECT_EQ(q.status, 1) << cmd << q.output;
        EXPECT_EQ(error_lines(q.output).size(), 1u) << cmd << q.output;
    }
}

// 6: a store on a read-only file system can be read by status, export and eval.
TEST_F(Hostile, ReadOnlyStoreCanBeRead) {
    ASSERT_EQ(run(embed((dir_ / "images").string(), "-c 'car color'")).status, 0);
    const fs::path ro  = dir_ / "ro";
    const fs::path out = dir_ / "out";
    fs::create_directories(ro);
    fs::create_directories(out);
    const std::string bin = dior::test::dior_bin();
    // A private mount namespace: the read-only bind mount vanishes with the command.
    const std::string script = "mount --bind " + dir_.string() + " " + ro.string() + " && mount -o remount,bind,ro " +
                               ro.string() + " && ! touch " + ro.string() + "/probe 2>/dev/null && " + bin +
                               " status --check --db " + (ro / "e.db").string() + " && " + bin + " export --db " +
                               (ro / "e.db").string() + " --npy " + out.string();
    const auto r = run_shell("unshare -m --propagation private sh -c " + quote(script));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("integrity check: ok"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("2 images"), std::string::npos) << r.output;
    EXPECT_TRUE(fs::exists(out / "manifest.json"));
}

// 6: a schema this build does not know, a file that is not a store, a damaged store.
TEST_F(Hostile, UnknownSchemaAndDamagedStoresAreStoreErrors) {
    ASSERT_EQ(run(embed((dir_ / "images").string())).status, 0);
    const std::string copy = (dir_ / "newer.db").string();
    fs::copy_file(db(), copy);
    {
        sqlite3 * h = nullptr;
        ASSERT_EQ(sqlite3_open(copy.c_str(), &h), SQLITE_OK);
        sqlite3_exec(h, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
        sqlite3_close(h);
    }
    auto r = run("status --db " + copy);
    EXPECT_EQ(r.status, 1) << r.output;
    ASSERT_EQ(error_lines(r.output).size(), 1u) << r.output;
    EXPECT_NE(r.output.find("schema version 99, newer than this dior reads (3)"), std::string::npos) << r.output;
    r = run(embed((dir_ / "images").string(), "-o " + copy));  // the writer refuses it too
    EXPECT_EQ(r.status, 1) << r.output;

    const std::string text = (dir_ / "notes.db").string();
    dior::test::write_file(text, std::string(8192, 'x'));
    r = run("status --db " + text);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("notes.db"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("damaged or not a dior store"), std::string::npos) << r.output;

    // Garbage over every page but the first: the integrity check finds it, with the file named.
    const std::string broken = (dir_ / "broken.db").string();
    {
        auto st = dior::store::open(broken);  // a store with a few pages
        for (int i = 0; i < 40; ++i) {
            st->put({ "img" + std::to_string(i), "h", 1, 1, 1, -1 }, {});
        }
    }
    {
        std::fstream f(broken, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(4096);
        const std::string junk(4096 * 3, '\x5a');
        f.write(junk.data(), (std::streamsize)junk.size());
    }
    r = run("status --check --db " + broken);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(error_lines(r.output).size(), 1u) << r.output;
    EXPECT_NE(r.output.find("broken.db"), std::string::npos) << r.output;
}

// 6: an image whose content changed since it was embedded is embedded again on resume.
TEST_F(Hostile, ChangedImageIsEmbeddedAgain) {
    const fs::path img = dir_ / "images" / "good0.bmp";
    ASSERT_EQ(run(embed((dir_ / "images").string(), "--npy " + (dir_ / "a").string())).status, 0);
    dior::test::write_bmp(img.string(), 40, 30, dior::test::pattern_rgb(40, 30, 7));  // new content, same name
    const auto r = run(embed((dir_ / "images").string(), "--npy " + (dir_ / "b").string()));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("changed since it was embedded"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("2 images: 1 embedded, 1 skipped"), std::string::npos) << r.output;
    // The vector now is the one a fresh store computes for the new content.
    const std::string fresh = (dir_ / "fresh.db").string();
    ASSERT_EQ(run(embed((dir_ / "images").string(), "-o " + fresh + " --npy " + (dir_ / "c").string())).status, 0);
    const std::string name = "images-text-describe-None-num_layer=-1-num_token=-1-embedsrc=input_last.npy";
    const auto a = dior::read_npy((dir_ / "a" / name).string()), b = dior::read_npy((dir_ / "b" / name).string()),
               c = dior::read_npy((dir_ / "c" / name).string());
    EXPECT_EQ(b.data, c.data);
    EXPECT_NE(a.data, b.data);
    EXPECT_EQ(summarize(db()).check, k_ok);
    // Touched but not changed: kept, not recomputed.
    fs::last_write_time(img, fs::last_write_time(img) + std::chrono::hours(1));
    const auto r2 = run(embed((dir_ / "images").string()));
    EXPECT_NE(r2.output.find("2 images: 0 embedded, 2 skipped"), std::string::npos) << r2.output;
}

// 7: a condition with "/" is stored and exported under an escaped, reversible name.
TEST_F(Hostile, ConditionWithSlashExportsAndImportsBack) {
    ASSERT_EQ(run(embed((dir_ / "images").string(), "-c 'make/model' -c '100% cotton'")).status, 0);
    const fs::path json = dir_ / "json";
    auto           r    = run("export --db " + db() + " --json " + json.string() + " --npy " + (dir_ / "npy").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(
        fs::is_directory(json / "images-text-describe-make%2Fmodel-num_layer=-1-num_token=-1-embedsrc=input_last"));
    EXPECT_TRUE(
        fs::is_directory(json / "images-text-describe-100%25_cotton-num_layer=-1-num_token=-1-embedsrc=input_last"));
    const std::string db2 = (dir_ / "back.db").string();
    r                     = run("import " + json.string() + " --db " + db2);
    ASSERT_EQ(r.status, 0) << r.output;
    std::set<std::string> conds;
    for (const auto & s : dior::store::open(db2, true)->settings()) {
        conds.insert(s.s.condition.value_or("None"));
    }
    EXPECT_EQ(conds, (std::set<std::string>{ "make/model", "100% cotton" }));
}

// 8: bad arguments: one error line, exit 1, nothing written.
TEST_F(Hostile, BadArgumentsWriteNothing) {
    const std::string                         imgs    = (dir_ / "images").string();
    const std::pair<std::string, std::string> cases[] = {
        { "--token 5000", "--token 5000 is outside any prompt" },
        { "--layer ''", "--layer '': give layer indices" },
        { "--layer 99", "layer 99 is out of range" },
        { "--image-max-size -5", "--image-max-size -5" },
        { "-t -1", "-t/--threads -1" },
        { "--gpu-layers -2", "--gpu-layers -2" },
        { "--max-image-pixels -1", "--max-file-size and --max-image-pixels take a positive limit" },
        { "--image-processor x", "--image-processor x: use fast, slow or mtmd" },
        { "--positions diagonal", "--positions diagonal" },
    };
    for (const auto & [args, want] : cases) {
        const auto r = run(embed(imgs, args));
        EXPECT_EQ(r.status, 1) << args << "\n" << r.output;
        const auto lines = error_lines(r.output);
        ASSERT_EQ(lines.size(), 1u) << args << "\n" << r.output;
        EXPECT_NE(lines[0].find(want), std::string::npos) << args << "\n" << lines[0];
        EXPECT_FALSE(fs::exists(db())) << args;
    }
}

// 8b: --image-max-size and the context follow one rule: each image's own prompt is checked against
// --ctx-size. Any limit embeds an image whose prompt fits (no probe of a worst-case square, no
// "out of memory" for an argument); one that does not fit is that image's failure, recorded, with
// the --ctx-size it needs, and that size is enough.
TEST_F(Hostile, ContextIsCheckedPerImageWhateverTheSizeLimit) {
    const fs::path d = dir_ / "images";
    dior::test::write_bmp((d / "wide.bmp").string(), 2600, 60, dior::test::pattern_rgb(2600, 60, 7));
    std::map<std::string, std::vector<float>> first;  // path -> vector, from the first limit that keeps size
    for (const char * limit : { "2000", "5000", "100000", "0" }) {
        const std::string out = (dir_ / (std::string("m") + limit + ".db")).string();
        const auto        r   = run(embed(d.string(), std::string("--image-max-size ") + limit + " -o " + out));
        ASSERT_EQ(r.status, 0) << limit << "\n" << r.output;
        EXPECT_EQ(error_lines(r.output).size(), 0u) << limit << "\n" << r.output;
        auto st = dior::store::open(out, true);
        ASSERT_EQ(st->settings().size(), 1u);
        std::vector<std::string> paths;
        const dior::matrix       m = st->vectors(st->settings()[0].id, &paths);
        EXPECT_EQ(m.rows, 3u) << limit;
        for (size_t i = 0; i < m.rows; ++i) {
            const std::vector<float> v(m.data.begin() + i * m.cols, m.data.begin() + (i + 1) * m.cols);
            for (float x : v) {
                ASSERT_TRUE(std::isfinite(x)) << limit;
            }
            // 40 x 30 images are below every limit: the same vector under each; the wide one is
            // shrunk by 2000 only.
            const bool kept = paths[i].find("wide") == std::string::npos || std::string(limit) != "2000";
            if (kept) {
                auto [it, added] = first.emplace(paths[i], v);
                if (!added) {
                    EXPECT_EQ(it->second, v) << limit << " " << paths[i];
                }
            }
        }
    }
    // A context too small for any prompt: every image fails on its own, with the size it needs.
    const auto r = run(embed(d.string(), "--ctx-size 16"));
    EXPECT_EQ(r.status, 1) << r.output;  // none embedded
    const auto lines = error_lines(r.output);
    ASSERT_EQ(lines.size(), 4u) << r.output;  // three images and the summary
    EXPECT_NE(r.output.find("none of the 3 images could be embedded"), std::string::npos) << r.output;
    int needed = 0;
    for (size_t i = 0; i < 3; ++i) {
        const auto at = lines[i].find("use --ctx-size ");
        ASSERT_NE(at, std::string::npos) << lines[i];
        EXPECT_NE(lines[i].find("more than the context (--ctx-size 16)"), std::string::npos) << lines[i];
        needed = std::max(needed, std::stoi(lines[i].substr(at + 15)));
    }
    EXPECT_EQ(summarize(db()).failures.size(), 3u);
    EXPECT_EQ(summarize(db()).images, 0u);
    // The size named is enough: the same command with it embeds every image (one less is not).
    const auto less = run(embed(d.string(), "--ctx-size " + std::to_string(needed - 1)));
    EXPECT_EQ(less.status, 2) << less.output;
    EXPECT_NE(less.output.find("use --ctx-size " + std::to_string(needed)), std::string::npos) << less.output;
    const auto ok = run(embed(d.string(), "--ctx-size " + std::to_string(needed)));
    EXPECT_EQ(ok.status, 0) << ok.output;
    EXPECT_EQ(summarize(db()).images, 3u);
    EXPECT_TRUE(summarize(db()).failures.empty());
    // A token no prompt reaches is each image's error too, not a guess from a probe.
    const auto far = run(embed(d.string(), "--token 3000 -o " + (dir_ / "far.db").string()));
    EXPECT_EQ(far.status, 1) << far.output;
    EXPECT_NE(far.output.find("token 3000 is outside the prompt"), std::string::npos) << far.output;
}

// 8c: file names that are not UTF-8 (a Latin-1 "café", and bytes that start no sequence) go
// through every command: error-free JSON that gives the bytes back, HTML that stays UTF-8, and an
// export / import round trip that keeps them.
TEST_F(Hostile, NamesThatAreNotUtf8GoThroughEveryCommand) {
    const fs::path    d      = dir_ / "images";
    const std::string latin1 = (d / "caf\xe9.bmp").string();
    const std::string broken = (d / "x\xed\xa0\x80\xff\xc3.bmp").string();  // a surrogate, 0xff, a cut sequence
    dior::test::write_bmp(latin1, 36, 28, dior::test::pattern_rgb(36, 28, 3));
    dior::test::write_bmp(broken, 44, 28, dior::test::pattern_rgb(44, 28, 4));
    auto r = run(embed(d.string(), "-c 'colour'"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(summarize(db()).images, 4u);
    r = run("status --db " + db());
    EXPECT_EQ(r.status, 0) << r.output;

    // search --json: valid JSON whose paths are the stored bytes
    r = run("search --db " + db() + " " + quote(latin1) + " -k 4 --json");
    ASSERT_EQ(r.status, 0) << r.output;
    const auto            start = r.output.find('{');
    const nlohmann::json  j     = dior::json_parse(r.output.substr(start));
    std::set<std::string> found;
    for (const auto & g : j.at("results")) {
        for (const auto & n : g.at("neighbors")) {
            found.insert(n.at("path").get<std::string>());
        }
    }
    EXPECT_EQ(j.at("query").get<std::string>(), latin1);
    EXPECT_TRUE(found.count(broken)) << r.output;  // the query itself is not its own neighbour
    EXPECT_NE(r.output.find("caf\\udce9.bmp"), std::string::npos) << r.output;  // as Python writes it
    EXPECT_EQ(is_utf8(r.output), true);                                         // nothing but UTF-8

    // export: .npy rows and manifest keep the bytes; the JSON layout's files are named by them
    const fs::path npy = dir_ / "npy", jl = dir_ / "json";
    r = run("export --db " + db() + " --npy " + npy.string() + " --json " + jl.string());
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string manifest = slurp((npy / "manifest.json").string());
    EXPECT_EQ(is_utf8(manifest), true);
    std::set<std::string> listed;
    const nlohmann::json  m = dior::json_parse(manifest);
    for (const auto & i : m.at("images")) {
        listed.insert(i.at("path").get<std::string>());
    }
    EXPECT_TRUE(listed.count(latin1) && listed.count(broken)) << manifest;
    std::string rows;
    for (const auto & e : fs::directory_iterator(npy)) {
        if (e.path().string().size() > 9 && e.path().string().rfind(".rows.txt") == e.path().string().size() - 9) {
            rows = slurp(e.path().string());
        }
    }
    EXPECT_NE(rows.find(latin1 + "\n"), std::string::npos);
    EXPECT_NE(rows.find(broken + "\n"), std::string::npos);
    const std::string db2 = (dir_ / "back.db").string();
    r                     = run("import " + jl.string() + " --db " + db2);
    ASSERT_EQ(r.status, 0) << r.output;
    auto                     back = dior::store::open(db2, true);
    std::vector<std::string> names;
    back->vectors(back->settings().at(0).id, &names);
    bool has_latin1 = false, has_broken = false;
    for (const auto & n : names) {
        has_latin1 |= n.find("caf\xe9") != std::string::npos;
        has_broken |= n.find("x\xed\xa0\x80\xff\xc3") != std::string::npos;
    }
    std::string all_names;
    for (const auto & n : names) {
        all_names += dior::printable(n) + " ";
    }
    EXPECT_TRUE(has_latin1 && has_broken) << all_names;

    // report: a page that stays UTF-8, the names shown with \xNN
    const fs::path html = dir_ / "report.html";
    r = run("report --db " + db() + " -o " + html.string() + " --query " + quote(latin1) + " --query " + quote(broken));
    ASSERT_EQ(r.status, 0) << r.output;
    const std::string page = slurp(html.string());
    EXPECT_EQ(is_utf8(page), true);
    EXPECT_NE(page.find("caf\\xe9.bmp"), std::string::npos);
}

// 8d: an export is all or nothing: one that fails midway (two images of one name in the
// reference's layout) leaves no file of its own and no staging folder, and a folder that held an
// earlier export keeps it unchanged.
TEST_F(Hostile, AnExportThatFailsLeavesNothingHalfWritten) {
    fs::create_directories(dir_ / "images" / "sub");
    dior::test::write_bmp((dir_ / "images" / "sub" / "good0.bmp").string(), 40, 30, dior::test::pattern_rgb(40, 30, 5));
    ASSERT_EQ(run(embed((dir_ / "images").string() + " " + (dir_ / "images" / "sub" / "good0.bmp").string())).status,
              0);
    const fs::path jl = dir_ / "out" / "json";
    auto           r  = run("export --db " + db() + " --json " + jl.string());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find("two images named good0.json"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(jl));
    EXPECT_TRUE(fs::is_empty(dir_ / "out")) << "a staging folder was left behind";
    // an earlier export in the folder stays as it was
    fs::create_directories(jl);
    dior::test::write_file((jl / "earlier.txt").string(), "kept");
    r = run("export --db " + db() + " --json " + jl.string());
    EXPECT_EQ(r.status, 1) << r.output;
    std::vector<std::string> left;
    for (const auto & e : fs::directory_iterator(jl)) {
        left.push_back(e.path().filename().string());
    }
    EXPECT_EQ(left, std::vector<std::string>{ "earlier.txt" });
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "out"), fs::directory_iterator()), 1);
    // a good export replaces what it writes and keeps the rest
    fs::remove(dir_ / "images" / "sub" / "good0.bmp");
    const std::string db2 = (dir_ / "one.db").string();
    ASSERT_EQ(run(embed((dir_ / "images" / "good1.bmp").string(), "-o " + db2)).status, 0);
    r = run("export --db " + db2 + " --json " + jl.string() + " --npy " + jl.string());
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_TRUE(fs::exists(jl / "earlier.txt"));
    EXPECT_TRUE(fs::exists(jl / "manifest.json"));
}

// 9: import of bad vectors: each bad setting reported and left out whole; nothing half-imported;
// no empty store left behind when nothing could be imported.
TEST_F(Hostile, ImportChecksEveryValueAndIsAllOrNothingPerSetting) {
    const fs::path tree = dir_ / "tree";
    auto           put  = [&](const std::string & setting, const std::string & file, const std::string & body) {
        fs::create_directories(tree / setting);
        dior::test::write_file((tree / setting / file).string(), body);
    };
    auto name = [](const std::string & cond) {
        return "ds-m-describe-" + cond + "-num_layer=-1-num_token=-1-embedsrc=input_last";
    };
    put(name("good"), "a.json", R"({"embedding": [1, 2.5, -3e-5]})");
    put(name("good"), "b.json", R"({"embedding": [0, 1, 2]})");
    const std::pair<std::string, std::string> bad[] = {
        { "text", R"({"embedding": [1, "a", 3]})" },   { "null", R"({"embedding": [1, null, 3]})" },
        { "nested", R"({"embedding": [1, [2], 3]})" }, { "overflow", R"({"embedding": [1, 1e39, 3]})" },
        { "empty", R"({"embedding": []})" },           { "notjson", R"({"embedding": [1, 2)" },
        { "noarray", R"({"embedding": 5})" },          { "bool", R"({"embedding": [true, 1, 2]})" },
    };
    for (const auto & [cond, body] : bad) {
        put(name(cond), "a.json", R"({"embedding": [7, 8, 9]})");  // a good file first: must not stay
        put(name(cond), "b.json", body);
    }
    put(name("mixed"), "a.json", R"({"embedding": [1, 2, 3]})");
    put(name("mixed"), "b.json", R"({"embedding": [1, 2]})");
    const auto r = run("import " + tree.string() + " --db " + db());
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_EQ(error_lines(r.output).size(), 9u) << r.output;
    EXPECT_NE(r.output.find("b.json: embedding[1] is string, not a number"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("b.json: embedding[1] = 1e+39 does not fit a float32"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("b.json: embedding of width 2, but a.json has 3"), std::string::npos) << r.output;
    const auto s = summarize(db());
    EXPECT_EQ(s.vectors, (std::map<std::string, size_t>{ { name("good"), 2 } }));
    EXPECT_EQ(s.check, k_ok);

    // Only bad settings: exit 1 and no store file.
    fs::remove_all(tree / name("good"));
    const std::string db2 = (dir_ / "none.db").string();
    const auto        r2  = run("import " + tree.string() + " --db " + db2);
    EXPECT_EQ(r2.status, 1) << r2.output;
    EXPECT_FALSE(fs::exists(db2));
}

// 9: eval on NaN or infinite vectors names the setting and the image and computes nothing.
TEST_F(Hostile, EvalRefusesNanAndInfVectors) {
    {
        auto          st = dior::store::open(db());
        dior::setting s;
        s.dataset     = "cub200";
        s.model_id    = "m";
        s.prompt_type = "describe";
        s.n_embd      = 2;
        const auto id = st->add_setting(s);
        st->put({ "Black_Footed_Albatross_0001_1.jpg", "h", 1, 1, 1, -1 }, { { id, { 1.0f, 2.0f } } });
        st->put({ "Black_Footed_Albatross_0002_2.jpg", "h", 1, 1, 1, -1 }, { { id, { NAN, 2.0f } } });
        st->put({ "Laysan_Albatross_0003_3.jpg", "h", 1, 1, 1, -1 }, { { id, { 0.0f, 1.0f } } });
    }
    const auto r = run("eval --db " + db() + " -o " + (dir_ / "res").string());
    EXPECT_EQ(r.status, 1) << r.output;
    const auto lines = error_lines(r.output);
    ASSERT_GE(lines.size(), 1u) << r.output;
    EXPECT_NE(lines[0].find("Black_Footed_Albatross_0002_2.jpg holds NaN"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("cub200-m-describe-None"), std::string::npos) << lines[0];
    EXPECT_FALSE(
        fs::exists(dir_ / "res" / "cub200-m-describe-None-num_layer=-1-num_token=-1-embedsrc=input_last.json"));
}

}  // namespace
