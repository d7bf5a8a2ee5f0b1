// The reference's datasets onto disk, as its scripts/download_datasets.sh lays them out: one flat
// folder per dataset. Archives are fetched into DIR/.downloads (resumed when a transfer broke
// off), checked, unpacked with libarchive into DIR/NAME.partial and renamed to DIR/NAME only when
// complete, so that a folder that exists is whole.
#include "dior.h"
#include "hub/http.h"
#include "io/digest.h"

#include <algorithm>
#include <archive.h>
#include <archive_entry.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <set>

namespace fs = std::filesystem;

namespace dior {
namespace {

enum class layout {
    cub_test_classes,  // CUB_200_2011/images/CLASS/*.jpg of the last 100 classes, flat
    flat_images,       // every .jpg/.jpeg/.png of the archive, flat; the first of a name wins
};

struct dataset_source {
    const char * name;
    const char * url;
    const char * archive;  // file name under DIR/.downloads
    const char * md5;      // published checksum, or nullptr
    layout       kind;
};

// The hosts and archives of the reference's script. CUB's MD5 is the one its publishers list (and
// torchvision-style loaders check); the movie posters' host publishes none, so that archive is
// checked by its contents (dior datasets check).
const dataset_source k_sources[] = {
    { "cub200", "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz", "CUB_200_2011.tgz",
      "97eceeb196236b17998738112f37df78", layout::cub_test_classes },
    { "movie_posters", "https://www.cs.ccu.edu.tw/~wtchu/projects/MoviePoster/Movie_Poster_Dataset.zip",
      "Movie_Poster_Dataset.zip", nullptr, layout::flat_images },
};

const char * k_manual_cars196 =
    "cars196 (Stanford Cars) needs a Kaggle account, so dior cannot fetch it:\n"
    "  1. pip install kaggle, and put your API token at ~/.kaggle/kaggle.json (chmod 600)\n"
    "  2. kaggle datasets download -d jessicali9530/stanford-cars-dataset -p DIR/cars196 --unzip\n"
    "  3. move the test split's images so that they sit directly in DIR/cars196/ (8131 images)\n"
    "  4. labels: the reference's label file is not published; give dior eval --cars196-labels FILE\n"
    "     (\"file,class\" rows of the test split)\n";

const char * k_manual_synthetic_cars =
    "synthetic_cars: the original download link (github.com/konstantinkobs/DML-analysis, 3D_cars) is\n"
    "gone. Put the images of a copy directly in DIR/synthetic_cars/ (the first 1000 of the metadata\n"
    "CSV are evaluated) and give dior eval --synthetic-cars-csv FILE.\n";

const char * k_manual_deepfashion =
    "deepfashion needs its terms accepted first:\n"
    "  1. review the terms: https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html\n"
    "  2. download img.zip (https://drive.google.com/drive/folders/0B7EVK8r0v71pekpRNUlMS3Z5cUk)\n"
    "     to DIR/deepfashion/img.zip, or unpack it so that DIR/deepfashion/img/ exists\n"
    "  3. run dior datasets download deepfashion again: img/CATEGORY/img_N.jpg becomes\n"
    "     DIR/deepfashion/CATEGORY-img_N.jpg, the names deepfashion_metadata.csv uses\n";

std::string with_dir(std::string text, const std::string & dir) {
    for (size_t at = text.find("DIR"); at != std::string::npos; at = text.find("DIR", at + dir.size())) {
        text.replace(at, 3, dir);
    }
    return text;
}

bool has_image_suffix(const std::string & name) {
    const auto dot = name.rfind('.');
    if (dot == std::string::npos) {
        return false;
    }
    const std::string ext = name.substr(dot);  // case-sensitive, as find -name in the reference
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

size_t count_images(const std::string & folder) {
    std::error_code ec;
    return fs::is_directory(folder, ec) ? list_dataset_images(folder).size() : 0;
}

bool non_empty_dir(const fs::path & p) {
    std::error_code ec;
    return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) != fs::directory_iterator();
}

// --- the archive -------------------------------------------------------------------------------

void fetch_archive(const std::string & url, const fs::path & file, const dataset_download_options & o,
                   const std::string & name) {
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) {
        return;  // fetched and checked by an earlier run that stopped while unpacking
    }
    fs::create_directories(file.parent_path(), ec);
    const fs::path part = file.string() + ".part";
    http::transfer t;
    t.url    = url;
    t.file   = part.string();
    t.cancel = o.cancel;
    if (o.progress) {
        const std::string shown = file.filename().string();
        t.progress              = [&](uint64_t done, uint64_t total) { o.progress(shown, done, total); };
        o.progress(shown, fs::exists(part, ec) ? fs::file_size(part, ec) : 0, 0);
    }
    const http::transfer_result r = http::download_resuming(t);
    if (!r.complete) {
        if (o.cancel && o.cancel->load()) {
            throw error(name + ": download interrupted; run again to resume it (" + part.string() + ")");
        }
        if (r.status >= 400 && r.status != 416) {
            throw error(name + ": cannot download " + url + ": " + r.error +
                        "; check the address, or pass --url with a mirror");
        }
        const bool kept = fs::file_size(part, ec) > 0 && !ec;  // else nothing to resume
        throw error(name + ": cannot download " + url + " (" + r.error + " after " +
                    std::to_string(http::k_resume_attempts) + " attempts); " +
                    (kept ? "run again to resume it" : "nothing was kept; run again to start it again"));
    }
    fs::rename(part, file, ec);
    if (ec) {
        throw error(name + ": cannot write " + file.string() + ": " + ec.message());
    }
}

// The archive's checksum against the one expected; a wrong archive is removed.
void check_archive(const fs::path & file, const std::string & algorithm, const std::string & expected,
                   const std::string & name) {
    digest d(algorithm);
    d.update_file(file.string());
    const std::string got  = d.hex();
    std::string       want = expected;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    if (got != want) {
        std::error_code ec;
        fs::remove(file, ec);
        throw error(name + ": " + file.string() + " is not the expected archive (" + algorithm + " " + got +
                    ", expected " + want +
                    "); it was removed. Run again; if it repeats, the host serves another "
                    "file: pass --url with a mirror (and --sha256 of its archive)");
    }
}

struct archive_deleter {
    void operator()(archive * a) const { archive_read_free(a); }
};

// Calls visit(path, entry) for each regular file of the archive; visit may read the entry's data.
void each_file(const fs::path & file, const std::string & name,
               const std::function<void(const std::string &, archive *)> & visit) {
    std::unique_ptr<archive, archive_deleter> a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_all(a.get());
    if (archive_read_open_filename(a.get(), file.c_str(), 1 << 20) != ARCHIVE_OK) {
        throw error(name + ": cannot open " + file.string() + ": " + archive_error_string(a.get()) +
                    " (remove it and run again)");
    }
    archive_entry * e = nullptr;
    int             rc;
    while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
        const char * p = archive_entry_pathname(e);
        if (p && archive_entry_filetype(e) == AE_IFREG) {
            visit(p, a.get());
        }
    }
    if (rc != ARCHIVE_EOF) {
        throw error(name + ": " + file.string() + " is damaged: " + archive_error_string(a.get()) +
                    " (remove it and run again)");
    }
}

void extract_entry(archive * a, const fs::path & out, const std::string & name) {
    std::ofstream f(out, std::ios::binary | std::ios::trunc);
    const void *  buf  = nullptr;
    size_t        size = 0;
    la_int64_t    off  = 0;
    int           rc;
    while ((rc = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
        f.seekp(off);
        f.write(static_cast<const char *>(buf), (std::streamsize)size);
    }
    if (rc != ARCHIVE_EOF) {
        throw error(name + ": cannot unpack " + out.filename().string() + ": " + archive_error_string(a));
    }
    if (!f.flush()) {
        throw error(name + ": cannot write " + out.string() + " (disk full?)");
    }
}

// A plain file name, safe to write into the target folder.
bool safe_name(const std::string & n) {
    return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos;
}

void unpack(const dataset_source & s, const fs::path & archive_file, const fs::path & target) {
    if (s.kind == layout::cub_test_classes) {
        // the metric-learning test split: the last 100 class folders in name order
        static const std::regex re("(^|.*/)images/([^/]+)/(.*/)?([^/]+\\.jpg)$");
        std::set<std::string>   classes;
        std::smatch             m;
        each_file(archive_file, s.name, [&](const std::string & p, archive *) {
            if (std::regex_match(p, m, re)) {
                classes.insert(m[2].str());
            }
        });
        std::set<std::string> test(
            classes.size() > 100 ? std::next(classes.begin(), (long)(classes.size() - 100)) : classes.begin(),
            classes.end());
        each_file(archive_file, s.name, [&](const std::string & p, archive * a) {
            if (std::regex_match(p, m, re) && test.count(m[2].str()) && safe_name(m[4].str())) {
                extract_entry(a, target / m[4].str(), s.name);
            }
        });
        return;
    }
    // flat: files at the archive's top level keep their place; deeper ones join them unless the
    // name is taken
    std::set<std::string> top;
    each_file(archive_file, s.name, [&](const std::string & p, archive *) {
        if (p.find('/') == std::string::npos) {
            top.insert(p);
        }
    });
    std::error_code ec;
    each_file(archive_file, s.name, [&](const std::string & p, archive * a) {
        const std::string base = fs::path(p).filename().string();
        if (!has_image_suffix(base) || !safe_name(base)) {
            return;
        }
        const bool at_top = p.find('/') == std::string::npos;
        if (at_top || (!top.count(base) && !fs::exists(target / base, ec))) {
            extract_entry(a, target / base, s.name);
        }
    });
}

// deepfashion: img.zip or img/ that the user put in place, flattened to CATEGORY-FILE.jpg.
dataset_download_result flatten_deepfashion(const fs::path & target, dataset_download_result r) {
    std::error_code ec;
    const fs::path  zip = target / "img.zip", tree = target / "img";
    const bool      have_zip = fs::is_regular_file(zip, ec), have_tree = fs::is_directory(tree, ec);
    if (!have_zip && !have_tree) {
        fs::create_directories(target, ec);
        r.manual_steps = k_manual_deepfashion;
        return r;
    }
    const fs::path staging = target / ".flatten.partial";
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    // img/CATEGORY/FILE.jpg (at least one folder under img/) -> CATEGORY-FILE.jpg
    auto name_of = [](const fs::path & rel) -> std::string {
        std::vector<std::string> parts;
        for (const auto & q : rel) {
            parts.push_back(q.string());
        }
        if (parts.size() < 3 || parts[0] != "img" || fs::path(parts.back()).extension() != ".jpg") {
            return "";
        }
        return parts[parts.size() - 2] + "-" + parts.back();
    };
    if (have_tree) {
        for (auto it = fs::recursive_directory_iterator(tree, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            const std::string n = name_of(it->path().lexically_relative(target));
            if (it->is_regular_file(ec) && safe_name(n) && !fs::exists(staging / n, ec)) {
                fs::copy_file(it->path(), staging / n, ec);
            }
        }
    } else {
        each_file(zip, "deepfashion", [&](const std::string & p, archive * a) {
            const std::string n = name_of(fs::path(p));
            if (safe_name(n) && !fs::exists(staging / n, ec)) {
                extract_entry(a, staging / n, "deepfashion");
            }
        });
    }
    for (const auto & e : fs::directory_iterator(staging, ec)) {
        fs::rename(e.path(), target / e.path().filename(), ec);
        if (ec) {
            throw error("deepfashion: cannot move " + e.path().string() + " into " + target.string() + ": " +
                        ec.message());
        }
    }
    fs::remove_all(staging, ec);
    r.images = count_images(target.string());
    return r;
}

}  // namespace

dataset_download_result download_dataset(const std::string & name, const dataset_download_options & o) {
    if (!find_dataset(name)) {
        std::string known;
        for (const auto & d : datasets()) {
            known += " " + d.name;
        }
        throw error("unknown dataset '" + name + "'; known:" + known);
    }
    const fs::path          dir    = o.datasets_dir.empty() ? fs::path("datasets") : fs::path(o.datasets_dir);
    const fs::path          target = dir / name;
    dataset_download_result r;
    r.folder = target.string();
    std::error_code ec;

    const dataset_source * src = nullptr;
    for (const auto & s : k_sources) {
        if (name == s.name) {
            src = &s;
        }
    }
    if (name == "deepfashion") {
        if ((r.images = count_images(target.string())) > 0) {
            r.already = true;
            return r;
        }
        r              = flatten_deepfashion(target, r);
        r.manual_steps = with_dir(r.manual_steps, dir.string());
        return r;
    }
    if (!src) {
        if (!o.url.empty()) {
            throw error(name + ": --url is for the datasets dior downloads (cub200, movie_posters)");
        }
        fs::create_directories(target, ec);
        r.images  = count_images(target.string());
        r.already = r.images > 0;
        r.manual_steps =
            r.already ? "" : with_dir(name == "cars196" ? k_manual_cars196 : k_manual_synthetic_cars, dir.string());
        return r;
    }
    if (non_empty_dir(target)) {
        r.already = true;
        r.images  = count_images(target.string());
        return r;
    }
    const fs::path archive_file = dir / ".downloads" / src->archive;
    const bool     mirror       = !o.url.empty();
    fetch_archive(mirror ? o.url : src->url, archive_file, o, name);
    if (!o.sha256.empty()) {
        check_archive(archive_file, "sha256", o.sha256, name);
    } else if (src->md5) {
        check_archive(archive_file, "md5", src->md5, name);
    }
    const fs::path staging = dir / (name + ".partial");
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (ec) {
        throw error(name + ": cannot create " + staging.string() + ": " + ec.message());
    }
    unpack(*src, archive_file, staging);
    if (count_images(staging.string()) == 0) {
        throw error(name + ": " + archive_file.string() + " holds none of the expected images (" +
                    (mirror ? "is --url the right archive?" : "remove it and run again") + ")");
    }
    fs::remove(target, ec);  // an empty folder from before
    fs::rename(staging, target, ec);
    if (ec) {
        throw error(name + ": cannot move " + staging.string() + " to " + target.string() + ": " + ec.message());
    }
    fs::remove(archive_file, ec);
    fs::remove(archive_file.parent_path(), ec);  // only when empty
    r.images = count_images(target.string());
    return r;
}

}  // namespace dior
