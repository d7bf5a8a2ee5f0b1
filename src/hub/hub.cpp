// Models from the Hugging Face hub, into the cache layout huggingface_hub and llama.cpp share:
//
//   CACHE/models--OWNER--NAME/refs/main               the commit "main" pointed at
//   CACHE/models--OWNER--NAME/blobs/ETAG              a file's bytes (ETAG: SHA-256 of an LFS file,
//                                                     the git blob id of another)
//   CACHE/models--OWNER--NAME/blobs/ETAG.incomplete   a transfer under way, resumed from its size
//   CACHE/models--OWNER--NAME/snapshots/COMMIT/PATH   a relative link to the blob
//   CACHE/.locks/models--OWNER--NAME/ETAG.lock        held while the blob is written
//
// The hub's API as llama.cpp uses it: GET api/models/REPO/refs (the branches and their commits),
// GET api/models/REPO/tree/COMMIT?recursive=true (files, sizes, LFS SHA-256; later pages named by
// the Link header), GET REPO/resolve/COMMIT/PATH (the bytes, ranges allowed).
#include "dior.h"
#include "engine/families.h"
#include "hub/http.h"
#include "io/digest.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sys/file.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dior {
namespace {

std::string env(const char * name) {
    const char * v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

bool env_true(const char * name) {
    std::string v = env(name);
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    return v == "1" || v == "true" || v == "yes" || v == "on";
}

fs::path hf_home() {
    if (const std::string h = env("HF_HOME"); !h.empty()) {
        return h;
    }
    if (const std::string x = env("XDG_CACHE_HOME"); !x.empty()) {
        return fs::path(x) / "huggingface";
    }
    if (const std::string h = env("HOME"); !h.empty()) {
        return fs::path(h) / ".cache" / "huggingface";
    }
    throw error("cannot find a cache folder for Hugging Face downloads: set HF_HUB_CACHE or HOME");
}

std::string resolved_endpoint(const hub_options & o) {
    std::string e = !o.endpoint.empty() ? o.endpoint : env("HF_ENDPOINT");
    if (e.empty()) {
        e = "https://huggingface.co";
    }
    while (!e.empty() && e.back() == '/') {
        e.pop_back();
    }
    return e;
}

std::string resolved_token(const hub_options & o) {
    if (!o.token.empty()) {
        return o.token;
    }
    if (const std::string t = env("HF_TOKEN"); !t.empty()) {
        return t;
    }
    const std::string p = env("HF_TOKEN_PATH");
    std::ifstream     f(!p.empty() ? fs::path(p) : hf_home() / "token");
    std::string       t;
    std::getline(f, t);
    while (!t.empty() && std::isspace((unsigned char)t.back())) {
        t.pop_back();
    }
    return t;
}

struct hub_file {
    std::string path;
    uint64_t    size = 0;
    std::string etag;  // SHA-256 of an LFS file, else the git blob id (SHA-1)
    bool        lfs = false;
};

// One repository on one hub, with its cache folder.
struct repo_ref {
    std::string owner, name, endpoint, token;
    fs::path    cache;  // the hub cache (holding models--*)

    std::string id() const { return owner + "/" + name; }

    fs::path dir() const { return cache / ("models--" + owner + "--" + name); }

    http::header_list headers() const {
        if (token.empty()) {
            return {};
        }
        return { "Authorization: Bearer " + token };
    }
};

// What to tell the user about an HTTP error of the hub.
std::string hub_problem(const repo_ref & r, long status, const std::string & code) {
    const std::string page = r.endpoint + "/" + r.id();
    if (status == 401 || status == 403 || code == "GatedRepo") {
        if (r.token.empty()) {
            return r.id() + " is gated or private: accept its terms on " + page +
                   " and set HF_TOKEN (or pass --hf-token) to a token of that account";
        }
        return "the token given has no access to " + r.id() + ": accept the repository's terms on " + page +
               " with the account the token belongs to";
    }
    if (status == 404 || code == "RepoNotFound" || code == "EntryNotFound" || code == "RevisionNotFound") {
        return "no repository or file " + r.id() + " on " + r.endpoint + " (" + http::describe_status(status, code) +
               "); check the name";
    }
    return "the hub answered " + http::describe_status(status, code) + " for " + r.id();
}

// The error of a GET, or nothing. `unreachable` is set when no answer came.
nlohmann::json api_get(const repo_ref & r, const std::string & url, bool & unreachable, std::string & why,
                       std::string * next = nullptr) {
    const http::response res = http::get(url, r.headers());
    unreachable              = res.status == 0;
    if (res.status == 0) {
        why = "cannot reach " + r.endpoint + ": " + res.error;
        return nullptr;
    }
    if (res.status != 200) {
        const auto it = res.headers.find("x-error-code");
        why           = hub_problem(r, res.status, it == res.headers.end() ? "" : it->second);
        return nullptr;
    }
    if (next) {
        next->clear();
        // Link: <URL>; rel="next"
        if (auto it = res.headers.find("link"); it != res.headers.end()) {
            static const std::regex re("<([^>]+)>\\s*;\\s*rel=\"next\"");
            std::smatch             m;
            if (std::regex_search(it->second, m, re)) {
                *next = m[1].str();
            }
        }
    }
    try {
        return nlohmann::json::parse(res.body);
    } catch (const std::exception & e) {
        why = "the hub's answer for " + r.id() + " is not JSON (" + url + "): " + e.what();
        return nullptr;
    }
}

bool is_hex(const std::string & s, size_t n) {
    return s.size() == n && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

// A path inside the repository that cannot leave the snapshot folder.
bool safe_relative(const std::string & p) {
    if (p.empty() || p[0] == '/' || p.find('\\') != std::string::npos) {
        return false;
    }
    for (const auto & part : fs::path(p)) {
        if (part == ".." || part == ".") {
            return false;
        }
    }
    return true;
}

// The commit "main" points at, and the files of that commit.
bool list_online(const repo_ref & r, std::string & commit, std::vector<hub_file> & files, bool & unreachable,
                 std::string & why) {
    const nlohmann::json refs = api_get(r, r.endpoint + "/api/models/" + r.id() + "/refs", unreachable, why);
    if (refs.is_null()) {
        return false;
    }
    commit.clear();
    for (const auto & b : refs.value("branches", nlohmann::json::array())) {
        if (b.is_object() && b.value("name", "") == "main" && b.contains("targetCommit") &&
            b["targetCommit"].is_string()) {
            commit = b["targetCommit"].get<std::string>();
        }
    }
    if (!is_hex(commit, 40)) {
        why = "the hub lists no valid commit of branch main for " + r.id();
        return false;
    }
    std::string url = r.endpoint + "/api/models/" + r.id() + "/tree/" + commit + "?recursive=true";
    files.clear();
    for (int page = 0; !url.empty(); ++page) {
        if (page > 10000) {
            why = "the hub's file list of " + r.id() + " does not end";
            return false;
        }
        std::string          next;
        const nlohmann::json tree = api_get(r, url, unreachable, why, &next);
        if (!tree.is_array()) {
            if (why.empty()) {
                why = "the hub's file list of " + r.id() + " is not a list";
            }
            return false;
        }
        for (const auto & e : tree) {
            if (!e.is_object() || e.value("type", "") != "file" || !e.contains("path") || !e["path"].is_string()) {
                continue;
            }
            hub_file f;
            f.path = e["path"].get<std::string>();
            f.size = e.value("size", (uint64_t)0);
            if (e.contains("lfs") && e["lfs"].is_object()) {
                f.etag = e["lfs"].value("oid", "");
                f.size = e["lfs"].value("size", f.size);
                f.lfs  = true;
            } else {
                f.etag = e.value("oid", "");
            }
            if (!safe_relative(f.path) || !is_hex(f.etag, f.lfs ? 64 : 40)) {
                continue;  // nothing the cache could hold safely
            }
            std::transform(f.etag.begin(), f.etag.end(), f.etag.begin(),
                           [](unsigned char c) { return (char)std::tolower(c); });
            files.push_back(f);
        }
        url = next;
    }
    return true;
}

// The files of the cached snapshot of "main".
bool list_cached(const repo_ref & r, std::string & commit, std::vector<hub_file> & files) {
    std::ifstream ref(r.dir() / "refs" / "main");
    if (!std::getline(ref, commit) || !is_hex(commit, 40)) {
        return false;
    }
    const fs::path  snap = r.dir() / "snapshots" / commit;
    std::error_code ec;
    files.clear();
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) {  // follows the link: a blob that is gone does not count
            continue;
        }
        hub_file f;
        f.path = it->path().lexically_relative(snap).generic_string();
        f.size = it->file_size(ec);
        f.etag = fs::read_symlink(it->path(), ec).filename().string();
        files.push_back(f);
    }
    std::sort(files.begin(), files.end(), [](const hub_file & a, const hub_file & b) { return a.path < b.path; });
    return !files.empty();
}

// --- choosing the files, by llama.cpp's rules (common/download.cpp) ----------------------------

struct split_info {
    std::string prefix, tag;  // name without .gguf and part numbers; the quantization word, upper case
    int         index = 1, count = 1;
};

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::toupper(c); });
    return s;
}

split_info split_of(const std::string & path) {
    split_info s;
    if (path.size() < 5 || upper(path.substr(path.size() - 5)) != ".GGUF") {
        return s;
    }
    s.prefix = path.substr(0, path.size() - 5);
    static const std::regex re_split("^(.+)-([0-9]{5})-of-([0-9]{5})$", std::regex::icase);
    static const std::regex re_tag("[-.]([A-Z0-9_]+)$", std::regex::icase);
    std::smatch             m;
    if (std::regex_match(s.prefix, m, re_split)) {
        s.index  = std::stoi(m[2].str());
        s.count  = std::stoi(m[3].str());
        s.prefix = m[1].str();
    }
    if (std::regex_search(s.prefix, m, re_tag)) {
        s.tag = upper(m[1].str());
    }
    return s;
}

int quant_bits(const std::string & tag) {
    const auto pos = tag.find_first_of("0123456789");
    return pos == std::string::npos ? 0 : std::atoi(tag.c_str() + pos);
}

bool ends_with_gguf(const std::string & p) {
    return p.size() >= 5 && p.compare(p.size() - 5, 5, ".gguf") == 0;
}

bool is_model_file(const std::string & path) {
    if (!ends_with_gguf(path)) {
        return false;
    }
    const std::string name = fs::path(path).filename().string();
    for (const char * word : { "mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-" }) {
        if (name.find(word) != std::string::npos) {
            return false;
        }
    }
    return true;
}

const hub_file * choose_model(const std::vector<hub_file> & files, const std::string & tag) {
    std::vector<std::string> tags =
        tag.empty() ? std::vector<std::string>{ "Q4_K_M", "Q8_0" } : std::vector<std::string>{ tag };
    for (const auto & t : tags) {
        const std::regex re(std::regex_replace(t, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") + "[.-]",
                            std::regex::icase);
        for (const auto & f : files) {
            const split_info s = split_of(f.path);
            if (is_model_file(f.path) && std::regex_search(f.path, re) && (s.count <= 1 || s.index == 1)) {
                return &f;
            }
        }
    }
    if (tag.empty()) {
        for (const auto & f : files) {
            const split_info s = split_of(f.path);
            if (is_model_file(f.path) && (s.count <= 1 || s.index == 1)) {
                return &f;
            }
        }
    }
    return nullptr;
}

// The mmproj in the model's folder or the deepest folder above it, nearest in bits.
const hub_file * choose_mmproj(const std::vector<hub_file> & files, const std::string & model) {
    const fs::path   model_dir  = fs::path(model).parent_path();
    const int        model_bits = quant_bits(split_of(model).tag);
    const hub_file * best       = nullptr;
    size_t           best_depth = 0;
    int              best_diff  = 0;
    for (const auto & f : files) {
        if (!ends_with_gguf(f.path) || f.path.find("mmproj") == std::string::npos) {
            continue;
        }
        const fs::path dir = fs::path(f.path).parent_path();
        auto           a = dir.begin(), b = model_dir.begin();
        size_t         depth = 0;
        for (; a != dir.end() && b != model_dir.end() && *a == *b; ++a, ++b) {
            ++depth;
        }
        if (a != dir.end()) {
            continue;  // not the model's folder nor one above it
        }
        const int diff = std::abs(quant_bits(split_of(f.path).tag) - model_bits);
        if (!best || depth > best_depth || (depth == best_depth && diff < best_diff)) {
            best       = &f;
            best_depth = depth;
            best_diff  = diff;
        }
    }
    return best;
}

std::string gguf_list(const std::vector<hub_file> & files) {
    std::string out;
    for (const auto & f : files) {
        if (ends_with_gguf(f.path)) {
            out += "\n  " + f.path;
        }
    }
    return out.empty() ? std::string(" (none)") : out;
}

// --- one file into the cache -------------------------------------------------------------------

// An exclusive lock on a file, released when it goes out of scope.
class file_lock {
  public:
    explicit file_lock(const fs::path & p) {
        std::error_code ec;
        fs::create_directories(p.parent_path(), ec);
        fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
            throw error("cannot lock " + p.string() + ": " + std::strerror(errno));
        }
    }

    ~file_lock() { ::close(fd_); }

    file_lock(const file_lock &)             = delete;
    file_lock & operator=(const file_lock &) = delete;

  private:
    int fd_ = -1;
};

// Points snapshots/COMMIT/PATH at the blob (a relative link, as huggingface_hub makes them).
void link_snapshot(const repo_ref & r, const std::string & commit, const hub_file & f) {
    const fs::path  link = r.dir() / "snapshots" / commit / f.path;
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    fs::path       target = "..";  // out of snapshots/COMMIT, and out of each folder of the path
    const fs::path rel(f.path);
    for (auto it = rel.begin(); it != rel.end(); ++it) {
        target /= "..";
    }
    target = target / "blobs" / f.etag;
    fs::remove(link, ec);
    fs::create_symlink(target, link, ec);
    if (ec) {
        throw error("cannot write " + link.string() + ": " + ec.message());
    }
}

void write_ref(const repo_ref & r, const std::string & commit) {
    std::error_code ec;
    fs::create_directories(r.dir() / "refs", ec);
    const fs::path tmp = r.dir() / "refs" / ("main.tmp" + std::to_string(::getpid()));
    {
        std::ofstream out(tmp);
        out << commit;
        if (!out.flush()) {
            throw error("cannot write " + tmp.string());
        }
    }
    fs::rename(tmp, r.dir() / "refs" / "main", ec);
    if (ec) {
        throw error("cannot write " + (r.dir() / "refs" / "main").string() + ": " + ec.message());
    }
}

std::string fetch_blob(const repo_ref & r, const std::string & commit, const hub_file & f, const hub_options & o) {
    const fs::path  blob = r.dir() / "blobs" / f.etag;
    std::error_code ec;
    fs::create_directories(blob.parent_path(), ec);
    file_lock lock(r.cache / ".locks" / r.dir().filename() / (f.etag + ".lock"));
    if (fs::is_regular_file(blob, ec) && fs::file_size(blob, ec) == f.size) {
        return blob.string();  // another snapshot or another process brought it
    }
    const fs::path part = blob.string() + ".incomplete";
    const bool     sha  = f.lfs;
    digest         d(sha ? "sha256" : "sha1", sha ? -1 : (int64_t)f.size);
    // what an earlier, broken transfer left is hashed first and continued
    if (fs::file_size(part, ec) > f.size && !ec) {
        fs::remove(part, ec);
    }
    d.update_file(part.string());
    http::transfer t;
    t.url     = r.endpoint + "/" + r.id() + "/resolve/" + commit + "/" + f.path;
    t.headers = r.headers();
    t.file    = part.string();
    t.cancel  = o.cancel;
    t.on_data = [&](const char * p, size_t n) { d.update(p, n); };
    t.restart = [&] { d.reset(); };
    if (o.progress) {
        t.progress = [&](uint64_t done, uint64_t) { o.progress(f.path, done, f.size); };
        o.progress(f.path, fs::exists(part, ec) ? fs::file_size(part, ec) : 0, f.size);
    }
    const http::transfer_result res = http::download_resuming(t, f.size);
    if (!res.complete) {
        if (o.cancel && o.cancel->load()) {
            throw error("download of " + f.path + " from " + r.id() + " interrupted; run again to resume it");
        }
        if (res.status >= 400 && res.status != 416) {
            throw error("cannot download " + f.path + " from " + r.id() + ": " +
                        hub_problem(r, res.status, res.error_code));
        }
        // a resume continues what is kept; a transfer that was thrown away starts again
        const bool kept = fs::file_size(part, ec) > 0 && !ec;
        throw error("cannot download " + f.path + " from " + r.id() + " (" + std::to_string(kept ? res.size : 0) +
                    " of " + std::to_string(f.size) + " bytes after " + std::to_string(http::k_resume_attempts) +
                    " attempts; last: " + res.error + "); " +
                    (kept ? "run again to resume it" : "nothing was kept; run again to start it again"));
    }
    const std::string got = d.hex();
    if (got != f.etag) {
        fs::remove(part, ec);
        throw error("the download of " + f.path + " from " + r.id() +
                    " is not the hub's file: " + (sha ? "SHA-256 " : "git blob id ") + got + ", expected " + f.etag +
                    "; it was removed. Run again; if it repeats, the hub or a proxy serves a wrong file");
    }
    fs::rename(part, blob, ec);
    if (ec) {
        throw error("cannot write " + blob.string() + ": " + ec.message());
    }
    return blob.string();
}

}  // namespace

std::string hub_cache_dir(const hub_options & o) {
    if (!o.cache_dir.empty()) {
        return o.cache_dir;
    }
    for (const char * v : { "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE" }) {
        if (const std::string p = env(v); !p.empty()) {
            return p;
        }
    }
    return (hf_home() / "hub").string();
}

hub_model hub_fetch_model(const std::string & spec, const hub_options & o) {
    static const std::regex re_spec("^([A-Za-z0-9][A-Za-z0-9._-]*)/([A-Za-z0-9][A-Za-z0-9._-]*)(:([A-Za-z0-9_.-]+))?$");
    std::smatch             m;
    if (!std::regex_match(spec, m, re_spec) || m[2].str().find("..") != std::string::npos) {
        throw error("-hf " + spec +
                    ": expected OWNER/NAME or OWNER/NAME:QUANT, e.g. ggml-org/Qwen2.5-VL-3B-Instruct-GGUF:Q4_K_M");
    }
    repo_ref r;
    r.owner               = m[1].str();
    r.name                = m[2].str();
    const std::string tag = m[4].str();
    r.endpoint            = resolved_endpoint(o);
    r.token               = resolved_token(o);
    r.cache               = hub_cache_dir(o);
    const bool offline    = o.offline || env_true("HF_HUB_OFFLINE");

    std::string           commit, why;
    std::vector<hub_file> files;
    bool                  online = false;
    if (!offline) {
        bool unreachable = false;
        online           = list_online(r, commit, files, unreachable, why);
        if (!online && !unreachable) {
            throw error("-hf " + spec + ": " + why);
        }
    }
    if (!online && !list_cached(r, commit, files)) {
        throw error("-hf " + spec + ": " +
                    (offline ? "offline (HF_HUB_OFFLINE) and " + r.id() + " is not in the cache " + r.cache.string() +
                                   "; run once online"
                             : why + "; nor is " + r.id() + " in the cache " + r.cache.string()));
    }
    const hub_file * model = choose_model(files, tag);
    if (!model) {
        throw error("-hf " + spec + ": no GGUF model" + (tag.empty() ? std::string() : " of quantization " + tag) +
                    " in " + r.id() + (online ? "" : " (cached)") + "; its GGUF files:" + gguf_list(files) +
                    ". dior needs a GGUF text model and its mmproj, as the ggml-org/...-GGUF repositories hold them, "
                    "of a model llama.cpp's mtmd supports; tested against transformers: " +
                    tested_families());
    }
    std::vector<const hub_file *> wanted;
    const split_info              ms = split_of(model->path);
    if (ms.count > 1) {
        for (int i = 1; i <= ms.count; ++i) {
            const hub_file * part = nullptr;
            for (const auto & f : files) {
                const split_info s = split_of(f.path);
                if (s.count == ms.count && s.index == i && s.prefix == ms.prefix) {
                    part = &f;
                }
            }
            if (!part) {
                throw error("-hf " + spec + ": part " + std::to_string(i) + " of " + std::to_string(ms.count) + " of " +
                            model->path + " is missing from " + r.id() + (online ? "" : " (cached)"));
            }
            wanted.push_back(part);
        }
    } else {
        wanted.push_back(model);
    }
    const hub_file * mmproj = choose_mmproj(files, model->path);
    if (mmproj) {
        wanted.push_back(mmproj);
    }

    const fs::path snap = r.dir() / "snapshots" / commit;
    hub_model      out;
    out.repo   = r.id();
    out.commit = commit;
    for (const hub_file * f : wanted) {
        if (online) {
            fetch_blob(r, commit, *f, o);
            link_snapshot(r, commit, *f);
        }
        const std::string local = (snap / f->path).string();
        if (f == mmproj) {
            out.mmproj = local;
        } else {
            out.model_parts.push_back(local);
        }
    }
    if (online) {
        write_ref(r, commit);
    }
    out.model = out.model_parts.front();
    return out;
}

}  // namespace dior
