// The embedding store: one SQLite file in WAL mode. All vectors of one image are written in one
// transaction, so a process killed at any moment leaves every image either complete or absent.
#include "dior.h"
#include "store/escape.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sqlite3.h>
#include <sys/stat.h>

namespace dior {

namespace {

const char * k_space_hint = " (disk full, a file size limit, or the storage failed)";
const char * k_corrupt_hint =
    " (the file is damaged or not a dior store: `dior status --check --db FILE` tells more; restore it from a "
    "copy or start a new store)";

// The schema this build reads and writes (PRAGMA user_version). 1: the first layout (stores before
// the version was kept say so in meta.schema); 2: images also record their modification time,
// settings the InDiReCT components; 3: settings record generation and the text encoder, vectors
// the generated text.
constexpr int k_schema_version = 3;

std::string hint_for(int rc) {
    rc &= 0xff;
    if (rc == SQLITE_FULL || rc == SQLITE_IOERR) {
        return k_space_hint;
    }
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) {
        return k_corrupt_hint;
    }
    return "";
}

const char * k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings(
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL, model_id TEXT NOT NULL, model_sha256 TEXT NOT NULL, mmproj_sha256 TEXT NOT NULL,
    engine TEXT NOT NULL, prompt_type TEXT NOT NULL, condition TEXT, prompt TEXT NOT NULL,
    layer INTEGER NOT NULL, token INTEGER NOT NULL, image_max_size INTEGER NOT NULL, positions TEXT NOT NULL,
    source TEXT NOT NULL, engine_options TEXT NOT NULL, n_embd INTEGER NOT NULL,
    components INTEGER NOT NULL DEFAULT 0,
    max_new_tokens INTEGER NOT NULL DEFAULT 0, temperature REAL NOT NULL DEFAULT 0,
    gen_seed INTEGER NOT NULL DEFAULT 0, repeat_penalty REAL NOT NULL DEFAULT 1,
    text_encoder TEXT NOT NULL DEFAULT '', text_encoder_sha256 TEXT NOT NULL DEFAULT '',
    text_mode TEXT NOT NULL DEFAULT '',
    model_path TEXT, mmproj_path TEXT, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS images(
    id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT, bytes INTEGER, width INTEGER, height INTEGER,
    mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS vectors(
    setting_id INTEGER NOT NULL REFERENCES settings(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    vector BLOB NOT NULL,
    text TEXT,
    PRIMARY KEY(setting_id, image_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures(
    path TEXT PRIMARY KEY, reason TEXT NOT NULL, time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS file_hashes(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', '1');
)sql";

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return buf;
}

// The fields that identify a setting, in a fixed order ("\x1f"-separated).
std::string identity(const setting & s) {
    const std::string sep = "\x1f";
    return s.dataset + sep + s.model_id + sep + s.model_sha256 + sep + s.mmproj_sha256 + sep + s.engine + sep +
           s.prompt_type + sep + (s.condition ? "c:" + *s.condition : "none") + sep + s.prompt + sep +
           std::to_string(s.layer) + sep + std::to_string(s.token) + sep + std::to_string(s.image_max_size) + sep +
           s.positions + sep + s.source + sep + s.engine_options + sep + std::to_string(s.n_embd) +
           (s.components ? sep + "k=" + std::to_string(s.components) : std::string()) +
           (s.max_new_tokens ? sep + "gen=" + std::to_string(s.max_new_tokens) + " temp=" + number(s.temperature) +
                                   " seed=" + std::to_string(s.seed) + " rp=" + number(s.repeat_penalty) + sep +
                                   s.text_encoder + sep + s.text_encoder_sha256 + sep + s.text_mode
                             : std::string());
}

class statement {
  public:
    statement(sqlite3 * db, const char * sql) : db_(db) {
        const int rc = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
        if (rc != SQLITE_OK) {
            const char * file = sqlite3_db_filename(db, "main");
            throw store_error(std::string("store ") + (file && *file ? file : "(in memory)") +
                              ": cannot prepare statement: " + sqlite3_errmsg(db) + hint_for(rc));
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

    statement & bind(int i, double v) {
        sqlite3_bind_double(st_, i, v);
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
                              sqlite3_errmsg(db_) + hint_for(rc));
        }
        return false;
    }

    void reset() { sqlite3_reset(st_); }

    int64_t     integer(int col) const { return sqlite3_column_int64(st_, col); }
    double      real(int col) const { return sqlite3_column_double(st_, col); }
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
    sqlite_store(const std::string & path, bool read_only) : path_(path) {
        if (path.empty()) {
            throw store_error("the store's path is empty; pass a file name (-o/--db FILE)");
        }
        int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        int rc    = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
        if (rc == SQLITE_OK && read_only && !readable()) {
            // A WAL store in a folder we cannot write (no -shm file to create): read it as immutable.
            sqlite3_close(db_);
            db_ = nullptr;
            rc  = sqlite3_open_v2(("file:" + percent_escape(path, "?#", true) + "?immutable=1").c_str(), &db_,
                                  SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
        }
        if (rc != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            db_ = nullptr;
            throw store_error("cannot open store " + path + ": " + msg +
                              (read_only ? std::string(" (check that the file exists and is readable)")
                                         : " (check that the folder exists and is writable, or pass another --out)"));
        }
        sqlite3_busy_timeout(db_, 10000);
        try {
            const int version = schema_version();
            if (version > k_schema_version) {
                throw store_error("store " + path + " has schema version " + std::to_string(version) +
                                  ", newer than this dior reads (" + std::to_string(k_schema_version) +
                                  "); use a newer dior, or another store");
            }
            if (read_only) {
                if (version == 0) {
                    throw store_error("store " + path + " is empty or not a dior store");
                }
                read_only_ = true;
                version_   = version;  // read as it is: columns it lacks read as their defaults
            } else {
                exec("PRAGMA journal_mode=WAL");
                exec("PRAGMA synchronous=NORMAL");  // in WAL mode: durable across process crashes
                exec("PRAGMA foreign_keys=ON");
                if (version < k_schema_version) {
                    migrate(version);
                }
            }
        } catch (const error & e) {
            sqlite3_close(db_);
            db_                    = nullptr;
            const std::string what = e.what();
            throw store_error(what.rfind("store " + path, 0) == 0 ? what : "cannot use store " + path + ": " + what);
        }
    }

    std::vector<std::string> check() const override {
        statement                q(db_, "PRAGMA integrity_check");
        std::vector<std::string> out;
        while (q.step()) {
            out.push_back(q.text(0));
        }
        return out;
    }

    std::optional<image_info> image(const std::string & path) const override {
        statement q(db_, ("SELECT path, sha256, bytes, width, height, " + col(2, "mtime_ns", "NULL") +
                          " FROM images WHERE path = ?")
                             .c_str());
        if (!q.bind(1, path).step()) {
            return std::nullopt;
        }
        return image_info{ q.text(0),         q.text(1),         q.integer(2),
                           (int)q.integer(3), (int)q.integer(4), q.is_null(5) ? -1 : q.integer(5) };
    }

    void forget_image(const std::string & path) override {
        transaction tx(*this);
        statement   v(db_, "DELETE FROM vectors WHERE image_id IN (SELECT id FROM images WHERE path = ?)");
        v.bind(1, path).step();
        statement i(db_, "DELETE FROM images WHERE path = ?");
        i.bind(1, path).step();
        tx.commit();
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
                      "engine_options, n_embd, model_path, mmproj_path, components, max_new_tokens, temperature, "
                      "gen_seed, repeat_penalty, text_encoder, text_encoder_sha256, text_mode) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        ins.bind(1, id).bind(2, s.dataset).bind(3, s.model_id).bind(4, s.model_sha256).bind(5, s.mmproj_sha256);
        ins.bind(6, s.engine).bind(7, s.prompt_type).bind(8, s.condition).bind(9, s.prompt);
        ins.bind(10, (int64_t)s.layer).bind(11, (int64_t)s.token).bind(12, (int64_t)s.image_max_size);
        ins.bind(13, s.positions).bind(14, s.source).bind(15, s.engine_options).bind(16, (int64_t)s.n_embd);
        ins.bind(17, s.model_path).bind(18, s.mmproj_path).bind(19, (int64_t)s.components);
        ins.bind(20, (int64_t)s.max_new_tokens).bind(21, s.temperature).bind(22, (int64_t)s.seed);
        ins.bind(23, s.repeat_penalty).bind(24, s.text_encoder).bind(25, s.text_encoder_sha256).bind(26, s.text_mode);
        ins.step();
        return sqlite3_last_insert_rowid(db_);
    }

    std::vector<stored_setting> settings() const override {
        statement                   q(db_,
                                      ("SELECT s.id, dataset, model_id, model_sha256, mmproj_sha256, engine, prompt_type, condition, "
                                       "prompt, layer, token, image_max_size, positions, source, engine_options, n_embd, model_path, "
                                       "mmproj_path, (SELECT count(*) FROM vectors v WHERE v.setting_id = s.id), " +
                     col(2, "components", "0") + ", " +
                     col(3,
                                           "max_new_tokens, temperature, gen_seed, repeat_penalty, text_encoder, "
                                                             "text_encoder_sha256, text_mode",
                                           "0, 0.0, 0, 1.0, '', '', ''") +
                     " FROM settings s ORDER BY s.id")
                                          .c_str());
        std::vector<stored_setting> out;
        while (q.step()) {
            stored_setting r;
            r.id                    = q.integer(0);
            r.s.dataset             = q.text(1);
            r.s.model_id            = q.text(2);
            r.s.model_sha256        = q.text(3);
            r.s.mmproj_sha256       = q.text(4);
            r.s.engine              = q.text(5);
            r.s.prompt_type         = q.text(6);
            r.s.condition           = q.is_null(7) ? std::nullopt : std::optional<std::string>(q.text(7));
            r.s.prompt              = q.text(8);
            r.s.layer               = (int)q.integer(9);
            r.s.token               = (int)q.integer(10);
            r.s.image_max_size      = (int)q.integer(11);
            r.s.positions           = q.text(12);
            r.s.source              = q.text(13);
            r.s.engine_options      = q.text(14);
            r.s.n_embd              = (int)q.integer(15);
            r.s.model_path          = q.text(16);
            r.s.mmproj_path         = q.text(17);
            r.n_vectors             = q.integer(18);
            r.s.components          = (int)q.integer(19);
            r.s.max_new_tokens      = (int)q.integer(20);
            r.s.temperature         = q.real(21);
            r.s.seed                = (uint32_t)q.integer(22);
            r.s.repeat_penalty      = q.real(23);
            r.s.text_encoder        = q.text(24);
            r.s.text_encoder_sha256 = q.text(25);
            r.s.text_mode           = q.text(26);
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
        put_one(img, vectors);
        tx.commit();
    }

    void put_all(const std::vector<image_vectors> & images) override {
        transaction tx(*this);
        for (const auto & iv : images) {
            put_one(iv.image, iv.vectors, iv.texts);
        }
        tx.commit();
    }

    merge_report merge(const std::string & other_path) override {
        std::error_code ec;
        if (std::filesystem::equivalent(other_path, path_, ec)) {
            throw store_error("cannot merge store " + path_ + " into itself");
        }
        const auto   src    = store::open(other_path, true);  // checks that it is a dior store
        const auto   theirs = src->settings();
        merge_report r;
        std::string  conflicts;
        size_t       n_conflicts = 0;
        const auto   conflict    = [&](const std::string & what) {
            if (++n_conflicts <= 10) {
                conflicts += "\n  " + what;
            }
        };

        attach(other_path);
        struct detach_on_exit {
            sqlite_store & s;

            ~detach_on_exit() { sqlite3_exec(s.db_, "DETACH DATABASE src", nullptr, nullptr, nullptr); }
        } detach{ *this };
        int src_version = 0;
        {
            statement q(db_, "PRAGMA src.user_version");
            if (q.step()) {
                src_version = (int)q.integer(0);
            }
        }
        transaction tx(*this);
        exec("CREATE TEMP TABLE IF NOT EXISTS merge_map(src_id INTEGER PRIMARY KEY, dst_id INTEGER NOT NULL)");
        exec("DELETE FROM temp.merge_map");

        // settings: equal ones meet; equal but for the model files' hashes is a conflict
        const auto without_hashes = [](setting s) {
            s.model_sha256 = s.mmproj_sha256 = s.text_encoder_sha256 = "";
            return identity(s);
        };
        std::map<std::string, setting> ours;
        for (const auto & st : settings()) {
            ours[without_hashes(st.s)] = st.s;
        }
        for (const auto & st : theirs) {
            const auto it = ours.find(without_hashes(st.s));
            if (it != ours.end() && identity(it->second) != identity(st.s)) {
                conflict("setting " + reference_dir_name(st.s) + ": computed from other model files (model " +
                         it->second.model_sha256.substr(0, 12) + " here, " + st.s.model_sha256.substr(0, 12) + " in " +
                         other_path + ")");
                continue;
            }
            const bool known = it != ours.end();
            (known ? r.settings_known : r.settings_added) += 1;
            const int64_t id           = add_setting(st.s);
            ours[without_hashes(st.s)] = st.s;
            statement m(db_, "INSERT INTO temp.merge_map(src_id, dst_id) VALUES (?, ?)");
            m.bind(1, st.id).bind(2, id).step();
        }

        // an image path whose file was another when embedded there
        {
            statement q(db_,
                        "SELECT si.path FROM src.images si JOIN main.images mi ON mi.path = si.path "
                        "WHERE si.sha256 <> '' AND mi.sha256 <> '' AND si.sha256 <> mi.sha256 ORDER BY si.path");
            while (q.step()) {
                conflict("image " + q.text(0) + ": another file (SHA-256) than the one embedded here");
            }
        }
        // the same image and setting with other vectors
        const char * same_cell =
            "FROM src.vectors sv JOIN src.images si ON si.id = sv.image_id "
            "JOIN temp.merge_map m ON m.src_id = sv.setting_id JOIN main.images mi ON mi.path = si.path "
            "JOIN main.vectors mv ON mv.setting_id = m.dst_id AND mv.image_id = mi.id ";
        {
            statement q(db_, (std::string("SELECT si.path, m.dst_id ") + same_cell +
                              "WHERE mv.vector <> sv.vector ORDER BY si.path")
                                 .c_str());
            while (q.step()) {
                conflict("image " + q.text(0) + ", setting " + std::to_string(q.integer(1)) +
                         ": another vector than the one stored here");
            }
        }
        if (n_conflicts > 0) {
            throw error("cannot merge " + other_path + " into " + path_ + ": " + std::to_string(n_conflicts) +
                        " conflict" + (n_conflicts > 1 ? "s" : "") + " (nothing was merged)" + conflicts +
                        (n_conflicts > 10 ? "\n  ..." : ""));
        }
        {
            statement q(db_, (std::string("SELECT count(*) ") + same_cell).c_str());
            q.step();
            r.vectors_known = (size_t)q.integer(0);
        }
        exec(("INSERT INTO main.images(path, sha256, bytes, width, height, mtime_ns) "
              "SELECT path, sha256, bytes, width, height, " +
              std::string(src_version >= 2 ? "mtime_ns" : "NULL") +
              " FROM src.images WHERE path NOT IN (SELECT path FROM main.images)")
                 .c_str());
        r.images_added = (size_t)sqlite3_changes(db_);
        exec(("INSERT OR IGNORE INTO main.vectors(setting_id, image_id, vector, text) "
              "SELECT m.dst_id, mi.id, sv.vector, " +
              std::string(src_version >= 3 ? "sv.text" : "NULL") +
              " FROM src.vectors sv JOIN src.images si ON si.id = sv.image_id "
              "JOIN temp.merge_map m ON m.src_id = sv.setting_id JOIN main.images mi ON mi.path = si.path")
                 .c_str());
        r.vectors_added = (size_t)sqlite3_changes(db_);
        // failures: theirs join ours; an image that has vectors now failed nowhere
        exec("INSERT OR IGNORE INTO main.failures(path, reason, time) SELECT path, reason, time FROM src.failures");
        r.failures_added = (size_t)sqlite3_changes(db_);
        exec(
            "DELETE FROM main.failures WHERE path IN (SELECT i.path FROM main.images i "
            "WHERE EXISTS (SELECT 1 FROM main.vectors v WHERE v.image_id = i.id))");
        tx.commit();
        return r;
    }

  private:
    void attach(const std::string & other_path) {
        statement q(db_, "ATTACH DATABASE ? AS src");
        q.bind(1, other_path).step();
    }

    void put_one(const image_info & img, const std::vector<std::pair<int64_t, std::vector<float>>> & vectors,
                 const std::vector<std::pair<int64_t, std::string>> & texts = {}) {
        {
            statement q(db_,
                        "INSERT INTO images(path, sha256, bytes, width, height, mtime_ns) VALUES (?,?,?,?,?,?) "
                        "ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, "
                        "width = excluded.width, height = excluded.height, mtime_ns = excluded.mtime_ns");
            q.bind(1, img.path).bind(2, img.sha256).bind(3, img.bytes).bind(4, (int64_t)img.width);
            q.bind(5, (int64_t)img.height);
            if (img.mtime_ns >= 0) {
                q.bind(6, img.mtime_ns);
            }
            q.step();
        }
        int64_t image_id = 0;
        {
            statement q(db_, "SELECT id FROM images WHERE path = ?");
            q.bind(1, img.path).step();
            image_id = q.integer(0);
        }
        statement ins(db_, "INSERT OR REPLACE INTO vectors(setting_id, image_id, vector, text) VALUES (?,?,?,?)");
        for (const auto & [sid, v] : vectors) {
            std::optional<std::string> text;
            for (const auto & [tid, t] : texts) {
                if (tid == sid) {
                    text = t;
                }
            }
            ins.bind(1, sid).bind(2, image_id).bind_blob(3, v.data(), v.size() * sizeof(float)).bind(4, text).step();
            ins.reset();
        }
        statement del(db_, "DELETE FROM failures WHERE path = ?");
        del.bind(1, img.path).step();
    }

  public:
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
        statement               q(db_, ("SELECT path, sha256, bytes, width, height, " + col(2, "mtime_ns", "NULL") +
                          " FROM images ORDER BY path")
                                           .c_str());
        std::vector<image_info> out;
        while (q.step()) {
            out.push_back({ q.text(0), q.text(1), q.integer(2), (int)q.integer(3), (int)q.integer(4),
                            q.is_null(5) ? -1 : q.integer(5) });
        }
        return out;
    }

    matrix vectors(int64_t setting_id, std::vector<std::string> * paths,
                   std::vector<std::string> * texts) const override {
        // One statement, one snapshot: rows, names and texts always belong together. Images in path
        // order (their unique index) outside, each one's vector looked up by key: no sort of the
        // blobs (at 100k vectors of 8 KB, sorting them made this 4x slower).
        statement q(db_, ("SELECT i.path, v.vector, " + col(3, "v.text", "NULL") +
                          " FROM images i CROSS JOIN vectors v ON v.setting_id = ? AND v.image_id = i.id"
                          " ORDER BY i.path")
                             .c_str());
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
            if (texts) {
                texts->push_back(q.text(2));
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
        std::string h;
        try {
            h = sha256_file(path);
        } catch (const error & e) {
            throw store_error(e.what());
        }
        if (!read_only_) {
            statement q(db_, "INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, sha256) VALUES (?,?,?,?)");
            q.bind(1, path).bind(2, (int64_t)st.st_size).bind(3, mtime).bind(4, h).step();
        }
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
            throw store_error("store " + path_ + ": " + msg + hint_for(rc));
        }
    }

    // A column that exists from schema `since` on, or its default in an older file read as it is.
    std::string col(int since, const char * name, const char * fallback) const {
        return version_ >= since ? name : fallback;
    }

    // Can the schema be read at all (a WAL store opened read-only may need its -shm file)?
    bool readable() {
        return sqlite3_exec(db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) == SQLITE_OK;
    }

    // 0: a new, empty file; 1: the first layout (user_version not yet kept); else user_version.
    int schema_version() {
        int version = 0;
        {
            statement q(db_, "PRAGMA user_version");
            if (q.step()) {
                version = (int)q.integer(0);
            }
        }
        if (version == 0) {
            statement q(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'settings'");
            if (q.step() && q.integer(0) > 0) {
                version = 1;
            } else {
                statement any(db_, "SELECT count(*) FROM sqlite_master");
                if (any.step() && any.integer(0) > 0) {
                    throw store_error("store " + path_ + " is an SQLite file with other tables, not a dior store");
                }
            }
        }
        return version;
    }

    void migrate(int version) {
        transaction tx(*this);
        version = schema_version();  // again, under the write lock: another process may have migrated
        if (version >= k_schema_version) {
            return;
        }
        if (version == 1) {
            exec("ALTER TABLE images ADD COLUMN mtime_ns INTEGER");
            exec("ALTER TABLE settings ADD COLUMN components INTEGER NOT NULL DEFAULT 0");
        }
        if (version == 1 || version == 2) {
            for (const char * col :
                 { "max_new_tokens INTEGER NOT NULL DEFAULT 0", "temperature REAL NOT NULL DEFAULT 0",
                   "gen_seed INTEGER NOT NULL DEFAULT 0", "repeat_penalty REAL NOT NULL DEFAULT 1",
                   "text_encoder TEXT NOT NULL DEFAULT ''", "text_encoder_sha256 TEXT NOT NULL DEFAULT ''",
                   "text_mode TEXT NOT NULL DEFAULT ''" }) {
                exec(("ALTER TABLE settings ADD COLUMN " + std::string(col)).c_str());
            }
            exec("ALTER TABLE vectors ADD COLUMN text TEXT");
        }
        exec(k_schema);
        exec(("PRAGMA user_version = " + std::to_string(k_schema_version)).c_str());
        tx.commit();
    }

    std::string path_;
    sqlite3 *   db_        = nullptr;
    bool        read_only_ = false;
    int         version_   = k_schema_version;  // the file's schema (older only when opened read-only)
};

}  // namespace

std::unique_ptr<store> store::open(const std::string & path, bool read_only) {
    return std::make_unique<sqlite_store>(path, read_only);
}

}  // namespace dior
