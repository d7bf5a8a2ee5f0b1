// SHA-256 of bytes and of files, with OpenSSL's libcrypto (it uses the CPU's SHA extensions), and
// a per-user cache of file hashes so that a new store does not read a 7 GB model again.
//
// The cache is an SQLite file (default ~/.cache/dior.cpp/file-hashes.db; DIOR_CACHE or
// XDG_CACHE_HOME move it, DIOR_HASH_CACHE names it, DIOR_HASH_CACHE=off disables it) keyed by the
// file's absolute path, size, modification time, status-change time (which no tool can set back)
// and inode: any change of the file misses; a file that changes while it is hashed is not
// remembered. A cache
// that cannot be opened or written is skipped silently: it only saves time.
#include "store/hash.h"

#include "dior.h"
#include "io/digest.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sqlite3.h>
#include <sys/stat.h>

namespace fs = std::filesystem;

namespace dior {
namespace {

std::string cache_path() {
    if (const char * p = std::getenv("DIOR_HASH_CACHE")) {
        return std::string(p) == "off" ? std::string() : std::string(p);
    }
    fs::path dir;
    if (const char * c = std::getenv("DIOR_CACHE"); c && *c) {
        dir = c;
    } else if (const char * x = std::getenv("XDG_CACHE_HOME"); x && *x) {
        dir = fs::path(x) / "dior.cpp";
    } else if (const char * h = std::getenv("HOME"); h && *h) {
        dir = fs::path(h) / ".cache" / "dior.cpp";
    } else {
        return "";
    }
    return (dir / "file-hashes.db").string();
}

// The cache, opened once per process; nullptr when there is none.
class hash_cache {
  public:
    static hash_cache & get() {
        static hash_cache c;
        return c;
    }

    std::string find(const std::string & path, const struct stat & st) {
        std::lock_guard<std::mutex> lock(m_);
        if (!db_) {
            return "";
        }
        sqlite3_stmt * q = nullptr;
        std::string    out;
        if (sqlite3_prepare_v2(
                db_,
                "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ? "
                "AND ctime_ns = ?",
                -1, &q, nullptr) == SQLITE_OK) {
            bind(q, path, st);
            if (sqlite3_step(q) == SQLITE_ROW) {
                const unsigned char * t = sqlite3_column_text(q, 0);
                out                     = t ? (const char *)t : "";
            }
        }
        sqlite3_finalize(q);
        return out.size() == 64 ? out : std::string();
    }

    void put(const std::string & path, const struct stat & st, const std::string & sha) {
        std::lock_guard<std::mutex> lock(m_);
        if (!db_) {
            return;
        }
        sqlite3_stmt * q = nullptr;
        if (sqlite3_prepare_v2(db_,
                               "INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, inode, ctime_ns, sha256) "
                               "VALUES (?,?,?,?,?,?)",
                               -1, &q, nullptr) == SQLITE_OK) {
            bind(q, path, st);
            sqlite3_bind_text(q, 6, sha.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_step(q);
        }
        sqlite3_finalize(q);
    }

  private:
    hash_cache() {
        const std::string p = cache_path();
        if (p.empty()) {
            return;
        }
        std::error_code ec;
        fs::create_directories(fs::path(p).parent_path(), ec);
        if (sqlite3_open_v2(p.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            nullptr) != SQLITE_OK ||
            sqlite3_busy_timeout(db_, 5000) != SQLITE_OK ||
            sqlite3_exec(
                db_,
                "CREATE TABLE IF NOT EXISTS file_hashes(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns "
                "INTEGER NOT NULL, inode INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL)",
                nullptr, nullptr, nullptr) != SQLITE_OK) {
            sqlite3_close(db_);  // not writable, damaged, not SQLite: no cache
            db_ = nullptr;
        }
    }

    ~hash_cache() { sqlite3_close(db_); }

    static void bind(sqlite3_stmt * q, const std::string & path, const struct stat & st) {
        sqlite3_bind_text(q, 1, path.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)st.st_size);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)st.st_ino);
        sqlite3_bind_int64(q, 5, (sqlite3_int64)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
    }

    std::mutex m_;
    sqlite3 *  db_ = nullptr;
};

}  // namespace

std::string sha256_hex(const void * data, size_t size) {
    digest d("sha256");
    d.update(static_cast<const char *>(data), size);
    return d.hex();
}

std::string sha256_file_uncached(const std::string & path, const std::atomic<bool> * cancel) {
    if (!std::ifstream(path, std::ios::binary)) {
        throw error("cannot read " + path);
    }
    digest d("sha256");
    d.update_file_mapped(path, cancel);
    return d.hex();
}

std::string sha256_file(const std::string & path, const std::atomic<bool> * cancel) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        throw error("cannot read " + path);
    }
    std::error_code   ec;
    const std::string key = fs::absolute(path, ec).lexically_normal().string();
    std::string       sha = hash_cache::get().find(key, st);
    if (sha.empty()) {
        sha = sha256_file_uncached(path, cancel);
        struct stat after {};
        const bool  same = stat(path.c_str(), &after) == 0 && after.st_size == st.st_size &&
                          after.st_mtim.tv_sec == st.st_mtim.tv_sec && after.st_mtim.tv_nsec == st.st_mtim.tv_nsec &&
                          after.st_ctim.tv_sec == st.st_ctim.tv_sec && after.st_ctim.tv_nsec == st.st_ctim.tv_nsec &&
                          after.st_ino == st.st_ino;
        if (same) {  // a file written while it was read gives a hash of no state: not remembered
            hash_cache::get().put(key, st, sha);
        }
    }
    return sha;
}

}  // namespace dior
