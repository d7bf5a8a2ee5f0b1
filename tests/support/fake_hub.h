// A Hugging Face hub and a dataset host on loopback, for the download tests: the API calls
// llama.cpp and dior use (refs, tree with LFS metadata and Link pagination, resolve with ranges and
// an optional redirect to a "CDN" path), gated repositories that need a token, and faults on
// request (a transfer cut off after some bytes, a file served with other bytes than its SHA-256).
#pragma once

#include "io/digest.h"

#include <atomic>
#include <httplib.h>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace dior::test {

class fake_hub {
  public:
    struct file {
        std::string bytes;
        bool        lfs       = true;
        int         cut_times = 0;  // the next this-many transfers stop after cut_after bytes
        size_t      cut_after = 0;
        bool        corrupt   = false;  // served with its last byte changed (the listing stays right)
        // served without a length, the bytes then junk without end (up to 256 MiB); `sent` counts
        bool                                   endless = false;
        std::shared_ptr<std::atomic<uint64_t>> sent    = std::make_shared<std::atomic<uint64_t>>(0);
    };

    struct repo {
        std::string                 commit = std::string(40, 'c');
        std::map<std::string, file> files;  // path -> file, listed in this order
        std::string                 token;  // non-empty: gated, this token opens it
        size_t                      page_size = 1000;
    };

    struct request {
        std::string path, range, authorization;
    };

    fake_hub() {
        using httplib::Request, httplib::Response;
        srv_.Get(R"(/api/models/([^/]+)/([^/]+)/refs)", [this](const Request & q, Response & r) {
            std::lock_guard<std::mutex> lock(m_);
            log(q);
            repo * rp = find(q, r, q.matches[1].str() + "/" + q.matches[2].str());
            if (!rp) {
                return;
            }
            nlohmann::json j = {
                { "branches",
                  { { { "name", "main" }, { "ref", "refs/heads/main" }, { "targetCommit", rp->commit } } } },
                { "tags", nlohmann::json::array() }
            };
            r.set_content(j.dump(), "application/json");
        });
        srv_.Get(R"(/api/models/([^/]+)/([^/]+)/tree/([0-9a-f]+))", [this](const Request & q, Response & r) {
            std::lock_guard<std::mutex> lock(m_);
            log(q);
            const std::string id = q.matches[1].str() + "/" + q.matches[2].str();
            repo *            rp = find(q, r, id);
            if (!rp) {
                return;
            }
            const size_t   from = q.has_param("cursor") ? std::stoul(q.get_param_value("cursor")) : 0;
            nlohmann::json out  = nlohmann::json::array();
            size_t         i    = 0;
            for (const auto & [path, f] : rp->files) {
                if (i >= from && i < from + rp->page_size) {
                    nlohmann::json e = { { "type", "file" }, { "path", path }, { "size", f.bytes.size() } };
                    if (f.lfs) {
                        digest s("sha256");
                        s.update(f.bytes.data(), f.bytes.size());
                        e["oid"] = std::string(40, 'a');
                        e["lfs"] = { { "oid", s.hex() }, { "size", f.bytes.size() }, { "pointerSize", 134 } };
                    } else {
                        digest g("sha1", (int64_t)f.bytes.size());
                        g.update(f.bytes.data(), f.bytes.size());
                        e["oid"] = g.hex();
                    }
                    out.push_back(e);
                    // folders are listed too, as the hub does
                    if (const size_t slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
                        out.push_back({ { "type", "directory" }, { "path", std::string(path, 0, slash) } });
                    }
                }
                ++i;
            }
            if (from + rp->page_size < rp->files.size()) {
                std::string link = base();  // built by appending: GCC 12 warns falsely on "<" + string
                link.append("/api/models/").append(id).append("/tree/").append(rp->commit);
                link.append("?recursive=true&cursor=").append(std::to_string(from + rp->page_size));
                r.set_header("Link", std::string(1, '<').append(link).append(">; rel=\"next\""));
            }
            r.set_content(out.dump(), "application/json");
        });
        srv_.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this](const Request & q, Response & r) {
            std::lock_guard<std::mutex> lock(m_);
            log(q);
            repo * rp = find(q, r, q.matches[1].str() + "/" + q.matches[2].str());
            if (!rp) {
                return;
            }
            auto it = rp->files.find(q.matches[4].str());
            if (q.matches[3].str() != rp->commit || it == rp->files.end()) {
                r.status = 404;
                r.set_header("X-Error-Code", "EntryNotFound");
                return;
            }
            if (redirect) {  // the hub sends LFS files to its CDN
                r.set_redirect("/cdn/" + q.matches[1].str() + "/" + q.matches[2].str() + "/" + it->first);
                return;
            }
            serve(it->second, r);
        });
        srv_.Get(R"(/cdn/([^/]+)/([^/]+)/(.+))", [this](const Request & q, Response & r) {
            std::lock_guard<std::mutex> lock(m_);
            log(q);
            auto rp = repos.find(q.matches[1].str() + "/" + q.matches[2].str());
            if (rp == repos.end() || !rp->second.files.count(q.matches[3].str())) {
                r.status = 404;
                return;
            }
            serve(rp->second.files[q.matches[3].str()], r);
        });
        srv_.Get(R"(/files/(.+))", [this](const Request & q, Response & r) {
            std::lock_guard<std::mutex> lock(m_);
            log(q);
            auto it = plain.find(q.matches[1].str());
            if (it == plain.end()) {
                r.status = 404;
                return;
            }
            serve(it->second, r);
        });
        port_   = srv_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { srv_.listen_after_bind(); });
        srv_.wait_until_ready();
    }

    ~fake_hub() {
        srv_.stop();
        thread_.join();
    }

    fake_hub(const fake_hub &)             = delete;
    fake_hub & operator=(const fake_hub &) = delete;

    std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

    int port() const { return port_; }

    // Changes to repos and plain files, and reads of the log, under this lock.
    std::unique_lock<std::mutex> lock() { return std::unique_lock<std::mutex>(m_); }

    std::vector<request> requests() {
        std::lock_guard<std::mutex> l(m_);
        return log_;
    }

    size_t count(const std::string & path_part) {
        size_t n = 0;
        for (const auto & q : requests()) {
            n += q.path.find(path_part) != std::string::npos;
        }
        return n;
    }

    std::map<std::string, repo> repos;  // "owner/name" -> repo
    std::map<std::string, file> plain;  // /files/NAME -> file (a dataset host)
    bool                        redirect = true;

  private:
    void log(const httplib::Request & q) {
        log_.push_back({ q.path, q.get_header_value("Range"), q.get_header_value("Authorization") });
    }

    repo * find(const httplib::Request & q, httplib::Response & r, const std::string & id) {
        auto it = repos.find(id);
        if (it == repos.end()) {
            r.status = 401;  // as the hub answers an anonymous caller
            r.set_header("X-Error-Code", "RepoNotFound");
            return nullptr;
        }
        if (!it->second.token.empty()) {
            const std::string auth = q.get_header_value("Authorization");
            if (auth.empty()) {
                r.status = 401;
                r.set_header("X-Error-Code", "GatedRepo");
                return nullptr;
            }
            if (auth != "Bearer " + it->second.token) {
                r.status = 403;
                r.set_header("X-Error-Code", "GatedRepo");
                return nullptr;
            }
        }
        return &it->second;
    }

    // The bytes, with ranges answered by httplib (206); a cut transfer closes the connection.
    static void serve(file & f, httplib::Response & r) {
        std::string bytes = f.bytes;
        if (f.corrupt && !bytes.empty()) {
            bytes.back() ^= 0x5a;
        }
        if (f.endless) {
            r.set_chunked_content_provider(
                "application/octet-stream", [bytes, sent = f.sent](size_t offset, httplib::DataSink & sink) {
                    static const std::string junk(65536, 'x');
                    if (offset >= ((size_t)256 << 20)) {
                        return false;
                    }
                    const bool   in_file = offset < bytes.size();
                    const char * p       = in_file ? bytes.data() + offset : junk.data();
                    const size_t n       = in_file ? std::min(bytes.size() - offset, (size_t)65536) : junk.size();
                    if (!sink.write(p, n)) {
                        return false;
                    }
                    *sent += n;
                    return true;
                });
            return;
        }
        const bool   cut   = f.cut_times > 0;
        const size_t limit = f.cut_after;
        f.cut_times -= cut ? 1 : 0;
        r.set_content_provider(
            bytes.size(), "application/octet-stream",
            [bytes, cut, limit, sent = (size_t)0](size_t offset, size_t length, httplib::DataSink & sink) mutable {
                size_t n = std::min(length, (size_t)65536);
                if (cut) {
                    if (sent >= limit) {
                        return false;  // the connection drops
                    }
                    n = std::min(n, limit - sent);
                }
                sink.write(bytes.data() + offset, n);
                sent += n;
                return true;
            });
    }

    httplib::Server      srv_;
    std::thread          thread_;
    int                  port_ = 0;
    std::mutex           m_;
    std::vector<request> log_;
};

}  // namespace dior::test
