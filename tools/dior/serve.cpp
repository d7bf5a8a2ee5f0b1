// dior serve: one local HTTP service over a store (and, when asked, the models that made it): a JSON
// API to list settings, search neighbours and embed uploaded images, a web page to look at
// neighbours under several conditions side by side, and the evaluation table.
//
// Safe by default: it listens on 127.0.0.1 unless told otherwise; with an API key every data route
// asks for it; request bodies and image pixels are limited; sockets time out; embedding work (the
// model runs one job at a time) waits in a bounded queue, and a full queue answers 503 at once while
// reads (settings, stored searches, thumbnails) go on; SIGTERM / SIGINT stop it gracefully.
#include "chart.h"
#include "commands.h"
#include "connection_threads.h"
#include "connection_watch.h"
#include "dior_json.h"
#include "html.h"
#include "query.h"
#include "web_page.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <filesystem>
#include <future>
#include <httplib.h>
#include <malloc.h>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <optional>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
using json   = nlohmann::json;

namespace dior::cli {
namespace {

struct serve_options {
    std::string           db = "embeddings.db";
    std::string           eval_dir;
    std::string           host = "127.0.0.1";
    int                   port = 8080;
    std::string           api_key;
    query_embedder::files files;
    hub_source            hf;
    double                max_body_mb     = 32;
    int64_t               max_pixels      = 40'000'000;
    int                   timeout_s       = 30;   // socket reads and writes
    int                   embed_timeout_s = 600;  // how long a request waits for its embedding
    size_t                queue           = 4;    // embedding jobs waiting (the running one aside)
    int                   http_threads    = 8;    // threads kept; more start for more connections
    int                   max_connections = 128;  // connections served at once (more wait, then 503)
    connection_limits     slow;                   // deadlines for slow clients
    std::string           image_batch = "auto";
    bool                  verbose     = false;
};

// Buffers from this size on are mapped on their own (and so given back when freed); requests with
// a body this large trim the heaps after them. Without both, glibc kept ~700 MB after a run of
// 30 MB uploads (its mmap threshold grows to 32 MB, and each thread has its own heap).
constexpr size_t k_large_body = 1 << 20;

// An answer with a status: what handlers throw to reply with an error.
struct http_error : error {
    int status;
    http_error(int s, const std::string & m) : error(m), status(s) {}
};

std::atomic<bool> g_stop{ false };

void on_stop(int) {
    g_stop = true;
}

std::vector<uint8_t> decode_base64(const std::string & text) {
    std::string s;
    s.reserve(text.size());
    const size_t comma = text.rfind("base64,", 200);  // a data URI's header, if sent whole
    for (size_t i = comma == std::string::npos ? 0 : comma + 7; i < text.size(); ++i) {
        if (!std::isspace((unsigned char)text[i])) {
            s += text[i];
        }
    }
    if (s.empty() || s.size() % 4 != 0) {
        throw http_error(400, "\"image\" is not base64 (its length is not a multiple of 4)");
    }
    std::vector<uint8_t> out(s.size() / 4 * 3);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char *>(s.data()), (int)s.size());
    if (n < 0) {
        throw http_error(400, "\"image\" is not valid base64");
    }
    size_t pad = 0;
    while (pad < 2 && s[s.size() - 1 - pad] == '=') {
        ++pad;
    }
    out.resize((size_t)n - pad);
    return out;
}

class service {
  public:
    explicit service(const serve_options & o) : o_(o), embedder_(o.files) {
        st_ = open_existing_store(o.db);
        if (!o.eval_dir.empty()) {
            eval_ = load_eval_dir(o.eval_dir);
        }
        limits_.max_pixels     = o.max_pixels;
        limits_.max_file_bytes = (int64_t)(o.max_body_mb * 1024 * 1024);
        worker_                = std::thread([this] { work(); });
    }

    ~service() { stop_worker(); }

    void stop_worker() {
        {
            std::lock_guard<std::mutex> lk(jobs_mu_);
            if (stopping_) {
                return;
            }
            stopping_ = true;
        }
        jobs_cv_.notify_all();
        if (worker_.joinable()) {
            worker_.join();
        }
    }

    // Every route's handler starts by telling the watch that the request is in: our work has no
    // deadline, the client's reading and writing do.
    template <class F>
    static auto ours(connection_watch & w, F f) {
        return [&w, f](const httplib::Request & req, httplib::Response & res) {
            w.handling();
            f(req, res);
        };
    }

    void routes(httplib::Server & svr, connection_watch & watch) {
        svr.set_post_routing_handler([&watch](const httplib::Request & req, httplib::Response & res) {
            watch.answering((int64_t)res.body.size());
            if (req.body.size() > k_large_body) {
                malloc_trim(0);  // what a large request's decoding left in the heaps goes back to the system
            }
        });
        svr.set_pre_routing_handler([this, &watch](const httplib::Request & req, httplib::Response & res) {
            const std::string length = req.get_header_value("Content-Length");
            watch.reading_body(!length.empty() ? (int64_t)std::strtoull(length.c_str(), nullptr, 10)
                               : req.has_header("Transfer-Encoding") ? -1
                                                                     : 0);
            if (o_.api_key.empty() || req.path == "/" || req.path == "/api/health") {
                return httplib::Server::HandlerResponse::Unhandled;
            }
            std::string       given = req.get_header_value("X-API-Key");
            const std::string auth  = req.get_header_value("Authorization");
            if (given.empty() && auth.rfind("Bearer ", 0) == 0) {
                given = auth.substr(7);
            }
            if (given.empty() && req.has_param("key")) {
                given = req.get_param_value("key");
            }
            if (given.size() != o_.api_key.size() ||
                CRYPTO_memcmp(given.data(), o_.api_key.data(), given.size()) != 0) {
                reply_error(res, 401,
                            given.empty() ? "this server needs an API key (X-API-Key header)" : "wrong API key");
                return httplib::Server::HandlerResponse::Handled;
            }
            return httplib::Server::HandlerResponse::Unhandled;
        });
        svr.set_exception_handler([](const httplib::Request &, httplib::Response & res, std::exception_ptr ep) {
            try {
                std::rethrow_exception(ep);
            } catch (const http_error & e) {
                reply_error(res, e.status, e.what());
            } catch (const json::exception & e) {
                reply_error(res, 400, std::string("malformed JSON: ") + e.what());
            } catch (const std::invalid_argument &) {
                reply_error(res, 400, "a number was expected");
            } catch (const std::out_of_range &) {
                reply_error(res, 400, "a number is out of range");
            } catch (const store_error & e) {
                reply_error(res, 500, e.what());
            } catch (const error & e) {  // bad input: an image that does not decode, a file too large
                reply_error(res, 400, e.what());
            } catch (const std::bad_alloc &) {
                reply_error(res, 503, "out of memory");
            } catch (const std::exception & e) {
                reply_error(res, 500, e.what());
            }
        });
        svr.set_error_handler([](const httplib::Request &, httplib::Response & res) {
            if (res.body.empty()) {
                reply_error(res, res.status,
                            res.status == 413   ? "request body too large"
                            : res.status == 404 ? "no such route"
                                                : "request failed");
            }
        });

        svr.Get("/", ours(watch, [](const httplib::Request &, httplib::Response & res) {
                    res.set_content(k_web_page, "text/html; charset=utf-8");
                }));
        svr.Get("/eval", ours(watch, [this](const httplib::Request &, httplib::Response & res) { eval_page(res); }));
        svr.Get("/api/health", ours(watch, [this](const httplib::Request &, httplib::Response & res) {
                    reply(res, { { "ok", true }, { "auth", !o_.api_key.empty() }, { "version", DIOR_VERSION } });
                }));
        svr.Get("/api/settings", ours(watch, [this](const httplib::Request &, httplib::Response & res) {
                    json arr = json::array();
                    for (const auto & s : settings()) {
                        arr.push_back(setting_json(s));
                    }
                    reply(res, { { "settings", arr } });
                }));
        svr.Get("/api/images",
                ours(watch, [this](const httplib::Request & req, httplib::Response & res) { images(req, res); }));
        svr.Get("/api/thumbnail",
                ours(watch, [this](const httplib::Request & req, httplib::Response & res) { thumbnail(req, res); }));
        svr.Get("/api/eval", ours(watch, [this](const httplib::Request &, httplib::Response & res) {
                    if (o_.eval_dir.empty()) {
                        throw http_error(404,
                                         "no evaluation loaded (start with --eval DIR, the folder dior eval -o wrote)");
                    }
                    json arr = json::array();
                    for (const auto & r : eval_) {
                        json a = json::object();
                        for (const auto & [aspect, sc] : r.by_aspect) {
                            a[aspect] = { { "map_r", sc.map_r }, { "prec_1", sc.prec_1 }, { "images", sc.images } };
                        }
                        arr.push_back({ { "setting", r.setting },
                                        { "dataset", r.dataset },
                                        { "method", r.source == "input_last" ? "dior" : r.source },
                                        { "condition", r.condition ? json(*r.condition) : json(nullptr) },
                                        { "layer", r.layer },
                                        { "results", a } });
                    }
                    reply(res, { { "results", arr } });
                }));
        svr.Post("/api/search",
                 ours(watch, [this](const httplib::Request & req, httplib::Response & res) { search(req, res); }));
        svr.Post("/api/embed",
                 ours(watch, [this](const httplib::Request & req, httplib::Response & res) { embed(req, res); }));
    }

  private:
    static void reply(httplib::Response & res, const json & j, int status = 200) {
        res.status = status;
        res.set_content(json_text(j), "application/json");
    }

    static void reply_error(httplib::Response & res, int status, const std::string & msg) {
        reply(res, { { "error", msg }, { "status", status } }, status);
    }

    std::vector<stored_setting> settings() {
        std::lock_guard<std::mutex> lk(store_mu_);
        return st_->settings();
    }

    stored_setting setting_by_id(int64_t id) {
        for (const auto & s : settings()) {
            if (s.id == id) {
                return s;
            }
        }
        throw http_error(404, "no setting #" + std::to_string(id));
    }

    std::shared_ptr<const setting_index> index(const stored_setting & s, metric m) {
        std::lock_guard<std::mutex> lk(index_mu_);  // one load at a time; later readers find it
        auto &                      slot = indexes_[{ s.id, m }];
        if (!slot || slot->s.n_vectors != s.n_vectors) {
            std::lock_guard<std::mutex> slk(store_mu_);
            slot = load_index(*st_, s, m);
        }
        return slot;
    }

    // Settings a request names: "settings": [ids], or a filter ("condition", "method", "layer", "dataset").
    std::vector<stored_setting> chosen(const json & j) {
        setting_filter f;
        if (j.contains("settings")) {
            f.ids = j.at("settings").get<std::vector<int64_t>>();
            if (f.ids.empty()) {
                throw http_error(400, "\"settings\" is empty");
            }
        }
        if (j.contains("conditions")) {
            f.conditions = j.at("conditions").get<std::vector<std::string>>();
        }
        f.method  = j.value("method", std::string());
        f.dataset = j.value("dataset", std::string());
        if (j.contains("layer")) {
            f.layer = j.at("layer").get<int>();
        }
        std::lock_guard<std::mutex> lk(store_mu_);
        try {
            return select_settings(*st_, f);
        } catch (const error & e) {
            throw http_error(404, e.what());
        }
    }

    static json parse_body(const httplib::Request & req) {
        json j = json_parse(req.body);  // json::exception -> 400 "malformed JSON"
        if (!j.is_object()) {
            throw http_error(400, "the body must be a JSON object");
        }
        return j;
    }

    // The query image of a request: "image" (base64) or "path" (an image of the store).
    std::pair<std::vector<uint8_t>, std::string> query_image(const json & j, std::string & stored_path) {
        if (j.contains("image") == j.contains("path")) {
            throw http_error(400, "give the query as \"image\" (base64) or as \"path\" (a stored image), one of them");
        }
        if (j.contains("image")) {
            auto bytes = decode_base64(j.at("image").get<std::string>());
            if (bytes.empty()) {
                throw http_error(400, "\"image\" is empty");
            }
            return { std::move(bytes), j.value("name", std::string("upload")) };
        }
        stored_path = j.at("path").get<std::string>();
        {
            std::lock_guard<std::mutex> lk(store_mu_);
            if (!st_->image(stored_path)) {
                throw http_error(404, "the store has no image " + printable(stored_path));
            }
        }
        return { {}, stored_path };
    }

    // Waits for the embedding worker (bounded queue): 503 when full, 504 past the time limit.
    // A text (CLIP and InDiReCT settings) instead of an image when `text` is given.
    std::vector<std::vector<float>> embed_now(std::vector<uint8_t> bytes, const std::string & source,
                                              std::vector<setting> sets, std::optional<std::string> text = {}) {
        auto job      = std::make_shared<embed_job>();
        job->bytes    = std::move(bytes);
        job->source   = source;
        job->key      = (text ? "text\n" : "image\n") + settings_key(sets);
        job->text     = std::move(text);
        job->settings = std::move(sets);
        auto fut      = job->done.get_future();
        {
            std::lock_guard<std::mutex> lk(jobs_mu_);
            if (stopping_) {
                throw http_error(503, "the server is shutting down");
            }
            if (jobs_.size() >= o_.queue) {
                throw http_error(
                    503, "busy: " + std::to_string(jobs_.size()) + " embedding jobs are waiting; try again later");
            }
            jobs_.push_back(job);
        }
        jobs_cv_.notify_one();
        if (fut.wait_for(std::chrono::seconds(o_.embed_timeout_s)) != std::future_status::ready) {
            job->abandoned = true;
            throw http_error(504, "embedding took longer than " + std::to_string(o_.embed_timeout_s) + " s");
        }
        return fut.get();  // rethrows the worker's error (a bad image: 400)
    }

    struct embed_job {
        std::vector<uint8_t>                          bytes;
        std::optional<std::string>                    text;  // a text query (CLIP, InDiReCT) instead
        std::string                                   source;
        std::string                                   key;  // jobs with the same key share settings
        std::vector<setting>                          settings;
        std::promise<std::vector<std::vector<float>>> done;
        std::atomic<bool>                             abandoned{ false };
    };

    // What makes two jobs' settings the same, field by field.
    static std::string settings_key(const std::vector<setting> & sets) {
        std::ostringstream k;
        for (const setting & s : sets) {
            k << s.source << '\n'
              << s.model_path << '\n'
              << s.mmproj_path << '\n'
              << s.model_sha256 << '\n'
              << s.mmproj_sha256 << '\n'
              << s.engine_options << '\n'
              << s.prompt_type << '\n'
              << (s.condition ? "c" + *s.condition : std::string("-")) << '\n'
              << s.layer << '\n'
              << s.token << '\n'
              << s.positions << '\n'
              << s.image_max_size << '\n'
              << s.max_new_tokens << '\n'
              << s.temperature << '\n'
              << s.seed << '\n'
              << s.repeat_penalty << '\n'
              << s.n_embd << "\n\n";
        }
        return k.str();
    }

    // The worker takes the first job and those waiting behind it with the same settings, up to
    // the model's image batch, and embeds their images together; if that fails, one at a time,
    // so that each job gets its own answer.
    void work() {
        for (;;) {
            std::vector<std::shared_ptr<embed_job>> batch;
            {
                std::unique_lock<std::mutex> lk(jobs_mu_);
                jobs_cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty()) {
                    return;  // stopping, nothing left
                }
                const size_t most = (size_t)std::max(1, embedder_.image_batch());
                for (auto it = jobs_.begin(); it != jobs_.end() && batch.size() < most;) {
                    if (batch.empty() || (*it)->key == batch[0]->key) {
                        batch.push_back(*it);
                        it = jobs_.erase(it);
                    } else {
                        ++it;
                    }
                }
                if (stopping_) {
                    for (auto & job : batch) {
                        job->done.set_exception(
                            std::make_exception_ptr(http_error(503, "the server is shutting down")));
                    }
                    continue;
                }
            }
            std::vector<std::shared_ptr<embed_job>> live;
            for (auto & job : batch) {
                if (job->abandoned) {
                    job->done.set_exception(std::make_exception_ptr(http_error(504, "abandoned")));
                } else {
                    live.push_back(job);
                }
            }
            if (live.size() > 1 && !live[0]->text) {
                std::vector<query_embedder::input> in;
                for (const auto & job : live) {
                    in.push_back({ &job->bytes, job->source });
                }
                try {
                    auto vs = embedder_.embed_many(in, live[0]->settings, limits_);
                    for (size_t k = 0; k < live.size(); ++k) {
                        live[k]->done.set_value(std::move(vs.at(k)));
                    }
                    if (o_.verbose) {
                        std::fprintf(stderr, "dior serve: %zu uploads embedded together\n", live.size());
                    }
                    continue;
                } catch (...) {
                    // one at a time below
                }
            }
            for (auto & job : live) {
                try {
                    job->done.set_value(job->text ? embedder_.embed_text(*job->text, job->settings)
                                                  : embedder_.embed(job->bytes, job->source, job->settings, limits_));
                } catch (...) {
                    job->done.set_exception(std::current_exception());
                }
            }
        }
    }

    void search(const httplib::Request & req, httplib::Response & res) {
        const json    j    = parse_body(req);
        const auto    sets = chosen(j);
        const int64_t k    = j.value("k", 10);
        if (k < 1 || k > 1000) {
            throw http_error(400, "\"k\" must be between 1 and 1000");
        }
        const auto m = parse_metric(j.value("metric", std::string("l2")));
        if (!m) {
            throw http_error(400, "\"metric\" must be l2 or cosine");
        }
        if (j.contains("text")) {
            search_text(j, sets, (size_t)k, *m, res);
            return;
        }
        std::string stored_path;
        auto [bytes, source]  = query_image(j, stored_path);
        const std::string sha = bytes.empty() ? std::string() : sha256_hex(bytes.data(), bytes.size());

        std::vector<std::string> known;
        {
            std::lock_guard<std::mutex> lk(store_mu_);
            known = stored_paths(*st_, stored_path, sha);
        }
        std::vector<std::shared_ptr<const setting_index>> indexes;
        for (const auto & s : sets) {
            indexes.push_back(index(s, *m));
        }
        const auto hits = search_indexes(indexes, known, (size_t)k, [&](const std::vector<setting> & missing) {
            if (bytes.empty()) {  // a stored image that some setting lacks: read it from disk
                bytes = read_file(stored_path, limits_.max_file_bytes);
            }
            return embed_now(std::move(bytes), source, missing);
        });
        json       out  = { { "metric", metric_name(*m) }, { "results", json::array() } };
        for (const auto & h : hits) {
            out["results"].push_back(hits_json(h));
        }
        reply(res, out);
    }

    // A text query: its vector under each chosen setting, all of which must take one (CLIP, InDiReCT).
    void search_text(const json & j, const std::vector<stored_setting> & sets, size_t k, metric m,
                     httplib::Response & res) {
        if (j.contains("image") || j.contains("path")) {
            throw http_error(400, "give the query as \"text\", \"image\" or \"path\", one of them");
        }
        if (!j.at("text").is_string() || j.at("text").get<std::string>().empty()) {
            throw http_error(400, "\"text\" must be a non-empty string");
        }
        const std::string text = j.at("text").get<std::string>();
        for (const auto & s : sets) {
            if (!query_embedder::can_embed_text(s.s)) {
                throw http_error(400, "setting " + describe(s) +
                                          " takes no text query; a text is answered under CLIP and InDiReCT settings");
            }
        }
        std::vector<std::shared_ptr<const setting_index>> indexes;
        for (const auto & s : sets) {
            indexes.push_back(index(s, m));
        }
        const auto hits = search_indexes(
            indexes, {}, k, [&](const std::vector<setting> & missing) { return embed_now({}, "text", missing, text); });
        json out = { { "metric", metric_name(m) }, { "text", text }, { "results", json::array() } };
        for (const auto & h : hits) {
            out["results"].push_back(hits_json(h));
        }
        reply(res, out);
    }

    void embed(const httplib::Request & req, httplib::Response & res) {
        const json j = parse_body(req);
        if (!j.contains("image")) {
            throw http_error(400, "give the image to embed as \"image\" (base64)");
        }
        std::string unused;
        auto [bytes, source] = query_image(j, unused);
        // Conditions that no stored setting has are embedded as the first matching DIOR setting
        // with that condition instead (same model, prompt, layer).
        std::vector<setting>     sets;
        std::vector<json>        described;
        json                     filter = j;
        std::vector<std::string> wanted;
        if (j.contains("conditions")) {
            wanted = j.at("conditions").get<std::vector<std::string>>();
            if (wanted.empty()) {
                throw http_error(400, "\"conditions\" is empty");
            }
            filter.erase("conditions");
        }
        std::vector<stored_setting> base = chosen(filter);
        if (wanted.empty()) {
            for (const auto & s : base) {
                sets.push_back(s.s);
                described.push_back(setting_json(s));
            }
        } else {
            const auto dior = std::find_if(base.begin(), base.end(), [](const stored_setting & s) {
                return s.s.source == "input_last" && query_embedder::can_embed(s.s);  // a known prompt type
            });
            for (const auto & c : wanted) {
                const auto same = std::find_if(base.begin(), base.end(), [&](const stored_setting & s) {
                    return s.s.condition.value_or("none") == c;
                });
                if (same != base.end()) {
                    sets.push_back(same->s);
                    described.push_back(setting_json(*same));
                } else if (dior != base.end()) {
                    setting s   = dior->s;
                    s.condition = c == "none" ? std::nullopt : std::optional<std::string>(c);
                    s.prompt    = instruction(*parse_prompt_type(s.prompt_type), s.condition);
                    sets.push_back(s);
                    stored_setting shown{ 0, s, 0 };
                    json           d = setting_json(shown);
                    d["id"]          = nullptr;
                    d["based_on"]    = dior->id;
                    described.push_back(d);
                } else {
                    throw http_error(
                        404, "no stored setting has condition '" + c + "', and no DIOR setting to embed it with");
                }
            }
        }
        const auto vs  = embed_now(std::move(bytes), source, sets);
        json       out = { { "results", json::array() } };
        for (size_t i = 0; i < vs.size(); ++i) {
            out["results"].push_back({ { "setting", described[i] }, { "vector", vs[i] } });
        }
        reply(res, out);
    }

    void images(const httplib::Request & req, httplib::Response & res) {
        if (!req.has_param("setting")) {
            throw http_error(400, "give ?setting=ID");
        }
        const stored_setting s      = setting_by_id(std::stoll(req.get_param_value("setting")));
        const auto           ix     = index(s, metric::l2);
        const size_t         offset = req.has_param("offset") ? std::stoul(req.get_param_value("offset")) : 0;
        const size_t         limit =
            std::min<size_t>(req.has_param("limit") ? std::stoul(req.get_param_value("limit")) : 200, 10000);
        json paths = json::array();
        for (size_t i = offset; i < ix->paths.size() && i < offset + limit; ++i) {
            paths.push_back(ix->paths[i]);
        }
        reply(res, { { "total", ix->paths.size() }, { "paths", paths } });
    }

    void thumbnail(const httplib::Request & req, httplib::Response & res) {
        const std::string path = req.get_param_value("path");
        const int size = std::clamp(req.has_param("size") ? std::stoi(req.get_param_value("size")) : 160, 16, 512);
        {
            std::lock_guard<std::mutex> lk(store_mu_);
            if (path.empty() || !st_->image(path)) {  // never a file the store does not name
                throw http_error(404, "the store has no image " + printable(path));
            }
        }
        const thumbnail_image t = make_thumbnail(path, size, limits_);
        res.set_content(std::string(t.bytes.begin(), t.bytes.end()), t.mime);
        res.set_header("Cache-Control", "max-age=60");
    }

    void eval_page(httplib::Response & res) {
        std::string body;
        if (o_.eval_dir.empty()) {
            body =
                "<p>No evaluation loaded: start the server with <code>--eval DIR</code> (the folder <code>dior "
                "eval -o DIR</code> wrote).</p>";
        } else {
            const auto t = make_results_table(eval_);
            body         = results_table_html(t) + "<div class=\"charts\">";
            for (const auto & c : results_charts(t)) {
                body += chart_svg(c);
            }
            body += "</div><h2>Clustering</h2>" + clustering_table_html(t);
        }
        res.set_content(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dior: evaluation"
            "</title><style>body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:"
            "collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px}th.method{text-align:"
            "left;font-weight:normal}.charts svg{margin:8px}.spread{color:#666;font-size:11px}td.fragile{background:"
            "#fff4e0}</style></head><body><h1>Evaluation</h1>"
            "<p><a href=\"/\">neighbours</a></p>" +
                body + "</body></html>",
            "text/html; charset=utf-8");
    }

    const serve_options &                                                      o_;
    image_limits                                                               limits_;
    std::unique_ptr<store>                                                     st_;
    std::mutex                                                                 store_mu_;
    std::vector<eval_result>                                                   eval_;
    std::mutex                                                                 index_mu_;
    std::map<std::pair<int64_t, metric>, std::shared_ptr<const setting_index>> indexes_;
    query_embedder                                                             embedder_;  // the worker's alone
    std::mutex                                                                 jobs_mu_;
    std::condition_variable                                                    jobs_cv_;
    std::deque<std::shared_ptr<embed_job>>                                     jobs_;
    bool                                                                       stopping_ = false;
    std::thread                                                                worker_;
};

// The HTTP server with every connection tracked by the watch while a thread serves it.
class guarded_server final : public httplib::Server {
  public:
    explicit guarded_server(connection_watch & w) : watch_(w) {}

  private:
    bool process_and_close_socket(socket_t sock) override {
        const connection_watch::tracked t(watch_, sock);
        return httplib::Server::process_and_close_socket(sock);
    }

    connection_watch & watch_;
};

int run_serve(serve_options o) {
    if (o.api_key.empty()) {
        if (const char * k = std::getenv("DIOR_API_KEY")) {
            o.api_key = k;
        }
    }
    if (o.queue < 1 || o.http_threads < 1 || o.max_connections < 1 || o.max_body_mb <= 0 || o.slow.header_s < 1 ||
        o.slow.min_rate < 1) {
        throw error(
            "--queue, --http-threads, --max-connections, --max-body-mb, --header-timeout and --min-rate must be "
            "positive");
    }
    mallopt(M_MMAP_THRESHOLD, (int)k_large_body);  // see k_large_body
    service          svc(o);
    connection_watch watch(o.slow);
    guarded_server   svr(watch);
    // http_threads stay; more start (up to max_connections) while connections hold them, so that
    // slow clients, cut at their deadlines, never keep the others waiting.
    svr.new_task_queue = [&o] { return new connection_threads((size_t)o.http_threads, (size_t)o.max_connections, 64); };
    svr.set_payload_max_length((size_t)(o.max_body_mb * 1024 * 1024));
    svr.set_read_timeout(o.timeout_s, 0);
    svr.set_write_timeout(o.timeout_s, 0);
    svr.set_keep_alive_timeout(o.slow.idle_s);
    if (o.verbose) {
        svr.set_logger([](const httplib::Request & req, const httplib::Response & res) {
            std::fprintf(stderr, "%s %s -> %d\n", req.method.c_str(), req.path.c_str(), res.status);
        });
    }
    svc.routes(svr, watch);

    int port = o.port;
    if (port == 0) {
        port = svr.bind_to_any_port(o.host);
    } else if (!svr.bind_to_port(o.host, port)) {
        port = -1;
    }
    if (port < 0) {
        throw error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                    " (in use, or not an address of this machine); pick another --port or --host");
    }
    if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1" && o.api_key.empty()) {
        std::fprintf(stderr, "warning: listening on %s without an API key: anyone who reaches it can use it\n",
                     o.host.c_str());
    }
    g_stop = false;
    std::signal(SIGTERM, on_stop);
    std::signal(SIGINT, on_stop);
    std::thread watcher([&svr] {
        while (!g_stop) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        svr.stop();
    });
    std::fprintf(stderr, "dior serve: http://%s:%d/ (store %s%s)\n", o.host.c_str(), port, printable(o.db).c_str(),
                 o.api_key.empty() ? "" : ", API key required");
    std::fflush(stderr);
    const bool ok = svr.listen_after_bind();
    g_stop        = true;
    watcher.join();
    svc.stop_worker();
    std::fprintf(stderr, "dior serve: stopped\n");
    return ok ? exit_ok : exit_fatal;
}

}  // namespace

void register_serve(CLI::App & app, int & exit_code) {
    auto   o   = std::make_shared<serve_options>();
    auto * cmd = app.add_subcommand("serve", "a local HTTP service: JSON API, neighbours page, evaluation page");
    cmd->add_option("--db", o->db, "the store")->default_str("embeddings.db");
    cmd->add_option("--eval", o->eval_dir, "the folder dior eval -o wrote (the evaluation page)");
    cmd->add_option("--host", o->host, "address to listen on")->default_str("127.0.0.1");
    cmd->add_option("--port", o->port, "port (0: any free one, printed)")->default_str("8080");
    cmd->add_option("--api-key", o->api_key, "require this key (X-API-Key header; also DIOR_API_KEY)");
    cmd->add_option("-m,--model", o->files.model, "for uploads: the text model, if moved since embedding");
    cmd->add_option("--mmproj", o->files.mmproj, "for uploads: the projector, if moved");
    o->hf.add(*cmd);
    cmd->add_option("--clip-model", o->files.clip_model, "for uploads: the CLIP model, if moved");
    cmd->add_option("-t,--threads", o->files.n_threads, "CPU threads of the models (0: all)");
    cmd->add_option("--gpu-layers", o->files.n_gpu_layers, "layers to offload to a GPU build (-1: all)");
    cmd->add_option("--image-batch", o->image_batch,
                    "uploads embedded together when they wait with the same settings: a count, or auto (1 on a "
                    "CPU, up to 16 on a GPU)")
        ->default_str("auto");
    cmd->add_option("--max-body-mb", o->max_body_mb, "largest request body, MiB")->default_str("32");
    cmd->add_option("--max-image-pixels", o->max_pixels, "largest uploaded image, pixels")->default_str("40000000");
    cmd->add_option("--timeout", o->timeout_s, "socket read/write timeout, seconds")->default_str("30");
    cmd->add_option("--embed-timeout", o->embed_timeout_s, "longest wait for an embedding, seconds")
        ->default_str("600");
    cmd->add_option("--queue", o->queue, "embedding jobs that may wait (more: 503)")->default_str("4");
    cmd->add_option("--http-threads", o->http_threads, "threads kept for answering requests")->default_str("8");
    cmd->add_option("--max-connections", o->max_connections, "connections served at once (a thread each)")
        ->default_str("128");
    cmd->add_option("--header-timeout", o->slow.header_s,
                    "seconds a client has to send a request's headers (after up to 5 s idle on a kept-alive "
                    "connection); also the grace before --min-rate applies to a body")
        ->default_str("10");
    cmd->add_option("--min-rate", o->slow.min_rate,
                    "slowest a client may send a body or take an answer, bytes per second (slower: cut)")
        ->default_str("16384");
    cmd->add_flag("-v,--verbose", o->verbose, "log every request; show llama.cpp's logs");
    cmd->callback([o, &exit_code] {
        o->files.verbose     = o->verbose;
        o->files.image_batch = parse_image_batch(o->image_batch);
        o->hf.fetch(o->files.model, o->files.mmproj);
        exit_code = run_serve(*o);
    });
}

}  // namespace dior::cli
