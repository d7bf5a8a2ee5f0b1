// The embedding store: one SQLite file in WAL mode. All vectors of one image are written in one
// transaction, so a process killed at any moment leaves every image either complete or absent.
#include "dior.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sqlite3.h>
#include <sys/stat.h>

extern "C" {
#include "sha256/sha256.h"
}

namespace dior {

namespace {

std::string to_hex(const unsigned char (&digest)[SHA256_DIGEST_SIZE]) {
    static const char * hex = "0123456789abcdef";
    std::string         out;
    for (unsigned char b : digest) {
        out.push_back(hex[b >> 4]);
        out.push_back(hex[b & 15]);
    }
    return out;
}

const char * k_space_hint = " (disk full, a file size limit, or the storage failed)";

const char * k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings(
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL, model_id TEXT NOT NULL, model_sha256 TEXT NOT NULL, mmproj_sha256 TEXT NOT NULL,
    engine TEXT NOT NULL, prompt_type TEXT NOT NULL, condition TEXT, prompt TEXT NOT NULL,
    layer INTEGER NOT NULL, token INTEGER NOT NULL, image_max_size INTEGER NOT NULL, positions TEXT NOT NULL,
    source TEXT NOT NULL, engine_options TEXT NOT NULL, n_embd INTEGER NOT NULL,
    model_path TEXT, mmproj_path TEXT, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS images(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT, bytes INTEGER, width INTEGER, height INTEGER);
CREATE TABLE IF NOT EXISTS vectors(
    setting_id INTEGER NOT NULL REFERENCES settings(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    vector BLOB NOT NULL,
    PRIMARY KEY(setting_id, image_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures(
    path TEXT PRIMARY KEY, reason TEXT NOT NULL, time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS file_hashes(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1');
)sql";

// The fields that identify a setting, in a fixed order ("\x1f"-separated).
std::string identity(const setting & s) {
    const std::string sep = "\x1f";
    return s.dataset + sep + s.model_id + sep + s.model_sha256 + sep + s.mmproj_sha256 + sep + s.engine + sep +
           s.prompt_type + sep + (s.condition ? "c:" + *s.condition : "none") + sep + s.prompt + sep +
           std::to_string(s.layer) + sep + std::to_string(s.token) + sep + std::to_string(s.image_max_size) + sep +
           s.positions + sep + s.source + sep + s.engine_options + sep + std::to_string(s.n_embd);
}

class statement {
  public:
    statement(sqlite3 * db, const char * sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
            throw store_error(std::string("store: cannot prepare statement: ") + sqlite3_errmsg(db));
        }
    }

    ~statement() { sqlite3_finalize(st_); }

    statement & bind(int i, const std::string & v) {
        sqlite3_bind_text(st_, i, v.data(), (int)v.size(), SQLITE_TRANSIENT);
        return *this;
    }

    statement & bind(int i, const std::optional<std::string> & v) {
        if (v) {
            return bind(i, *v);
        }
        sqlite3_bind_null(st_, i);
        return *this;
    }

    statement & bind(int i, int64_t v) {
        sqlite3_bind_int64(st_, i, v);
        return *this;
    }

    statement & bind_blob(int i, const void * data, size_t n) {
        sqlite3_bind_blob(st_, i, data, (int)n, SQLITE_TRANSIENT);
        return *this;
    }

    // true while there is a row
    bool step() {
        const int rc = sqlite3_step(st_);
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc != SQLITE_DONE) {
            const char * file = sqlite3_db_filename(db_, "main");
            throw store_error(std::string("store ") + (file && *file ? file : "(in memory)") + ": " +
                              sqlite3_errmsg(db_) +
                              ((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR ? k_space_hint : ""));
        }
        return false;
    }

    void reset() { sqlite3_reset(st_); }

    int64_t     integer(int col) const { return sqlite3_column_int64(st_, col); }
    bool        is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
    std::string text(int col) const {
        const unsigned char * t = sqlite3_column_text(st_, col);
        return t ? std::string((const char *)t, sqlite3_column_bytes(st_, col)) : std::string();
    }
    const void * blob(int col, size_t & n) const {
        n = (size_t)sqlite3_column_bytes(st_, col);
        return sqlite3_column_blob(st_, col);
    }

  private:
    sqlite3 *      db_;
    sqlite3_stmt * st_ = nullptr;
};

class sqlite_store final : public store {
  public:
    explicit sqlite_store(const std::string & path) : path_(path) {
        const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
        if (rc != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            throw store_error("cannot open store " + path + ": " + msg +
                              " (check that the folder exists and is writable, or pass another --out)");
        }
        sqlite3_busy_timeout(db_, 10000);
        try {
            exec("PRAGMA journal_mode=WAL");
            exec("PRAGMA synchronous=NORMAL");  // in WAL mode: durable across process crashes
            exec("PRAGMA foreign_keys=ON");
            exec(k_schema);
        } catch (const error & e) {
            sqlite3_close(db_);
            db_ = nullptr;
            throw store_error("cannot use store " + path + ": " + e.what());
        }
    }

    ~sqlite_store() override { sqlite3_close(db_); }

    int64_t add_setting(const setting & s) override {
        const std::string id = identity(s);
        {
            statement q(db_, "SELECT id FROM settings WHERE identity = ?");
            if (q.bind(1, id).step()) {
                return q.integer(0);
            }
        }
        statement ins(db_,
                      "INSERT INTO settings(identity, dataset, model_id, model_sha256, mmproj_sha256, engine, "
                      "prompt_type, condition, prompt, layer, token, image_max_size, positions, source, "
                      "engine_options, n_embd, model_path, mmproj_path) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        ins.bind(1, id).bind(2, s.dataset).bind(3, s.model_id).bind(4, s.model_sha256).bind(5, s.mmproj_sha256);
        ins.bind(6, s.engine).bind(7, s.prompt_type).bind(8, s.condition).bind(9, s.prompt);
        ins.bind(10, (int64_t)s.layer).bind(11, (int64_t)s.token).bind(12, (int64_t)s.image_max_size);
        ins.bind(13, s.positions).bind(14, s.source).bind(15, s.engine_options).bind(16, (int64_t)s.n_embd);
        ins.bind(17, s.model_path).bind(18, s.mmproj_path);
        ins.step();
        return sqlite3_last_insert_rowid(db_);
    }

    std::vector<stored_setting> settings() const override {
        statement                   q(db_,
                                      "SELECT s.id, dataset, model_id, model_sha256, mmproj_sha256, engine, prompt_type, condition, "
                                                        "prompt, layer, token, image_max_size, positions, source, engine_options, n_embd, model_path, "
                                                        "mmproj_path, (SELECT count(*) FROM vectors v WHERE v.setting_id = s.id) "
                                                        "FROM settings s ORDER BY s.id");
        std::vector<stored_setting> out;
        while (q.step()) {
            stored_setting r;
            r.id               = q.integer(0);
            r.s.dataset        = q.text(1);
            r.s.model_id       = q.text(2);
            r.s.model_sha256   = q.text(3);
            r.s.mmproj_sha256  = q.text(4);
            r.s.engine         = q.text(5);
            r.s.prompt_type    = q.text(6);
            r.s.condition      = q.is_null(7) ? std::nullopt : std::optional<std::string>(q.text(7));
            r.s.prompt         = q.text(8);
            r.s.layer          = (int)q.integer(9);
            r.s.token          = (int)q.integer(10);
            r.s.image_max_size = (int)q.integer(11);
            r.s.positions      = q.text(12);
            r.s.source         = q.text(13);
            r.s.engine_options = q.text(14);
            r.s.n_embd         = (int)q.integer(15);
            r.s.model_path     = q.text(16);
            r.s.mmproj_path    = q.text(17);
            r.n_vectors        = q.integer(18);
            out.push_back(std::move(r));
        }
        return out;
    }

    std::vector<int64_t> missing(const std::vector<int64_t> & ids, const std::string & image_path) const override {
        statement q(db_, "SELECT v.setting_id FROM vectors v JOIN images i ON i.id = v.image_id WHERE i.path = ?");
        q.bind(1, image_path);
        std::set<int64_t> have;
        while (q.step()) {
            have.insert(q.integer(0));
        }
        std::vector<int64_t> out;
        for (int64_t id : ids) {
            if (!have.count(id)) {
                out.push_back(id);
            }
        }
        return out;
    }

    void put(const image_info & img, const std::vector<std::pair<int64_t, std::vector<float>>> & vectors) override {
        transaction tx(*this);
        {
            statement q(db_,
                        "INSERT INTO images(path, sha256, bytes, width, height) VALUES (?,?,?,?,?) "
                        "ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, "
                        "width = excluded.width, height = excluded.height");
            q.bind(1, img.path).bind(2, img.sha256).bind(3, img.bytes).bind(4, (int64_t)img.width);
            q.bind(5, (int64_t)img.height).step();
        }
        int64_t image_id = 0;
        {
            statement q(db_, "SELECT id FROM images WHERE path = ?");
            q.bind(1, img.path).step();
            image_id = q.integer(0);
        }
        statement ins(db_, "INSERT OR REPLACE INTO vectors(setting_id, image_id, vector) VALUES (?,?,?)");
        for (const auto & [sid, v] : vectors) {
            ins.bind(1, sid).bind(2, image_id).bind_blob(3, v.data(), v.size() * sizeof(float)).step();
            ins.reset();
        }
        statement del(db_, "DELETE FROM failures WHERE path = ?");
        del.bind(1, img.path).step();
        tx.commit();
    }

    void put_failure(const std::string & path, const std::string & reason) override {
        statement q(db_,
                    "INSERT INTO failures(path, reason) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET "
                    "reason = excluded.reason, time = CURRENT_TIMESTAMP");
        q.bind(1, path).bind(2, reason).step();
    }

    std::vector<stored_failure> failures() const override {
        statement                   q(db_, "SELECT path, reason, time FROM failures ORDER BY path");
        std::vector<stored_failure> out;
        while (q.step()) {
            out.push_back({ q.text(0), q.text(1), q.text(2) });
        }
        return out;
    }

    std::vector<image_info> images() const override {
        statement               q(db_, "SELECT path, sha256, bytes, width, height FROM images ORDER BY path");
        std::vector<image_info> out;
        while (q.step()) {
            out.push_back({ q.text(0), q.text(1), q.integer(2), (int)q.integer(3), (int)q.integer(4) });
        }
        return out;
    }

    matrix vectors(int64_t setting_id, std::vector<std::string> * paths) const override {
        statement q(db_,
                    "SELECT i.path, v.vector FROM vectors v JOIN images i ON i.id = v.image_id "
                    "WHERE v.setting_id = ? ORDER BY i.path");
        q.bind(1, setting_id);
        matrix m;
        while (q.step()) {
            size_t       n    = 0;
            const void * data = q.blob(1, n);
            const size_t cols = n / sizeof(float);
            if (m.rows > 0 && cols != m.cols) {
                throw store_error("store " + path_ + ": setting " + std::to_string(setting_id) +
                                  " mixes vector widths");
            }
            m.cols          = cols;
            const size_t at = m.data.size();
            m.data.resize(at + cols);
            std::memcpy(m.data.data() + at, data, cols * sizeof(float));
            ++m.rows;
            if (paths) {
                paths->push_back(q.text(0));
            }
        }
        return m;
    }

    std::string file_sha256(const std::string & path) override {
        struct stat st {};
        if (stat(path.c_str(), &st) != 0) {
            throw store_error("cannot read " + path);
        }
        const int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        {
            statement q(db_, "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?");
            if (q.bind(1, path).bind(2, (int64_t)st.st_size).bind(3, mtime).step()) {
                return q.text(0);
            }
        }
        std::ifstream f(path, std::ios::binary);
        if (!f) {
            throw store_error("cannot read " + path);
        }
        sha256_t ctx;
        sha256_init(&ctx);
        std::vector<char> buf(1 << 22);
        while (f) {
            f.read(buf.data(), (std::streamsize)buf.size());
            sha256_update(&ctx, (const unsigned char *)buf.data(), (size_t)f.gcount());
        }
        unsigned char digest[SHA256_DIGEST_SIZE];
        sha256_final(&ctx, digest);
        const std::string h = to_hex(digest);
        statement         q(db_, "INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, sha256) VALUES (?,?,?,?)");
        q.bind(1, path).bind(2, (int64_t)st.st_size).bind(3, mtime).bind(4, h).step();
        return h;
    }

  private:
    class transaction {
      public:
        explicit transaction(sqlite_store & s) : s_(s) { s_.exec("BEGIN IMMEDIATE"); }

        void commit() {
            s_.exec("COMMIT");
            done_ = true;
        }

        ~transaction() {
            if (!done_) {
                sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
            }
        }

      private:
        sqlite_store & s_;
        bool           done_ = false;
    };

    void exec(const char * sql) {
        char *    err = nullptr;
        const int rc  = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
        if (rc != SQLITE_OK) {
            std::string msg = err ? err : sqlite3_errmsg(db_);
            sqlite3_free(err);
            throw store_error("store " + path_ + ": " + msg +
                              ((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_IOERR ? k_space_hint : ""));
        }
    }

    std::string path_;
    sqlite3 *   db_ = nullptr;
};

}  // namespace

std::string sha256_hex(const void * data, size_t size) {
    unsigned char digest[SHA256_DIGEST_SIZE];
    sha256_hash(digest, (const unsigned char *)data, size);
    return to_hex(digest);
}

std::unique_ptr<store> store::open(const std::string & path) {
    return std::make_unique<sqlite_store>(path);
}

}  // namespace dior
