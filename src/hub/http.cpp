// HTTP(S) on libcurl: redirects followed (the hub sends file downloads to a CDN; libcurl drops an
// Authorization header on the way to another host), proxies from the usual environment variables,
// the system's certificates, stalled transfers given up after a minute.
#include "hub/http.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <curl/curl.h>
#include <filesystem>
#include <memory>
#include <mutex>
#include <unistd.h>

namespace fs = std::filesystem;

namespace dior::http {
namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct curl_deleter {
    void operator()(CURL * c) const { curl_easy_cleanup(c); }
};
struct slist_deleter {
    void operator()(curl_slist * l) const { curl_slist_free_all(l); }
};
using curl_ptr  = std::unique_ptr<CURL, curl_deleter>;
using slist_ptr = std::unique_ptr<curl_slist, slist_deleter>;

// Headers of the last response of a chain of redirects.
size_t on_header(char * data, size_t size, size_t n, void * user) {
    auto &            headers = *static_cast<std::map<std::string, std::string> *>(user);
    const std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        headers.clear();  // a new response (after a redirect)
        return size * n;
    }
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon), value = line.substr(colon + 1);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return (char)std::tolower(c); });
        const auto first = value.find_first_not_of(" \t"), last = value.find_last_not_of(" \t\r\n");
        headers[name] = first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
    }
    return size * n;
}

curl_ptr make_handle(const std::string & url, const header_list & headers, slist_ptr & list) {
    global_init();
    curl_ptr c(curl_easy_init());
    if (!c) {
        throw error("cannot start libcurl");
    }
    for (const auto & h : headers) {
        list.reset(curl_slist_append(list.release(), h.c_str()));
    }
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, list.get());
    curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c.get(), CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "dior.cpp/" DIOR_LIB_VERSION);
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
    return c;
}

size_t append_body(char * data, size_t size, size_t n, void * user) {
    static_cast<std::string *>(user)->append(data, size * n);
    return size * n;
}

struct transfer_state {
    const transfer *                   t       = nullptr;
    CURL *                             handle  = nullptr;
    FILE *                             out     = nullptr;
    uint64_t                           offset  = 0;  // bytes in the file before this request
    uint64_t                           written = 0;  // bytes written by this request
    uint64_t                           limit   = 0;  // the file's whole size, when known
    bool                               started = false, to_file = false, overflow = false;
    std::string                        error_body;
    std::map<std::string, std::string> headers;
};

size_t write_file(char * data, size_t size, size_t n, void * user) {
    auto &       s     = *static_cast<transfer_state *>(user);
    const size_t bytes = size * n;
    if (!s.started) {
        s.started   = true;
        long status = 0;
        curl_easy_getinfo(s.handle, CURLINFO_RESPONSE_CODE, &status);
        s.to_file = status == 200 || status == 206;
        if (status == 200 && s.offset > 0) {
            // the server ignored the range: start again from the first byte
            if (fflush(s.out) != 0 || ftruncate(fileno(s.out), 0) != 0 || fseek(s.out, 0, SEEK_SET) != 0) {
                return 0;
            }
            s.offset = 0;
            if (s.t->restart) {
                s.t->restart();
            }
        }
        // The file's end: the listed size, else what the server announces for this answer.
        s.limit = s.t->size;
        if (s.limit == 0 && s.to_file) {
            const auto cl = s.headers.find("content-length");
            if (cl != s.headers.end() && !cl->second.empty() &&
                cl->second.find_first_not_of("0123456789") == std::string::npos && cl->second.size() < 20) {
                s.limit = s.offset + std::stoull(cl->second);
            }
        }
    }
    if (!s.to_file) {
        if (s.error_body.size() < 4096) {
            s.error_body.append(data, std::min(bytes, 4096 - s.error_body.size()));
        }
        return bytes;
    }
    size_t keep = bytes;
    if (s.limit > 0 && s.offset + s.written + bytes > s.limit) {  // more than the file holds
        keep       = s.offset + s.written >= s.limit ? 0 : (size_t)(s.limit - s.offset - s.written);
        s.overflow = true;
    }
    if (fwrite(data, 1, keep, s.out) != keep) {
        return 0;  // disk full: libcurl stops with CURLE_WRITE_ERROR
    }
    s.written += keep;
    if (s.t->on_data && keep > 0) {
        s.t->on_data(data, keep);
    }
    return s.overflow ? 0 : bytes;  // 0 stops libcurl: nothing past the file's end is read
}

int on_progress(void * user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
    auto & s = *static_cast<transfer_state *>(user);
    if (s.t->cancel && s.t->cancel->load()) {
        return 1;  // libcurl stops with CURLE_ABORTED_BY_CALLBACK
    }
    if (s.t->progress && s.to_file) {
        s.t->progress(s.offset + (uint64_t)now, total > 0 ? s.offset + (uint64_t)total : 0);
    }
    return 0;
}

}  // namespace

response get(const std::string & url, const header_list & headers) {
    slist_ptr list;
    curl_ptr  c = make_handle(url, headers, list);
    response  r;
    curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, 120L);
    const CURLcode rc = curl_easy_perform(c.get());
    if (rc != CURLE_OK) {
        r.error = curl_easy_strerror(rc);
        return r;
    }
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
    return r;
}

transfer_result download(const transfer & t) {
    transfer_result result;
    std::error_code ec;
    FILE *          out = std::fopen(t.file.c_str(), "ab");
    if (!out) {
        result.error = "cannot write " + t.file + ": " + std::strerror(errno);
        return result;
    }
    std::unique_ptr<FILE, int (*)(FILE *)> closer(out, std::fclose);
    transfer_state                         s;
    s.t      = &t;
    s.out    = out;
    s.offset = fs::file_size(t.file, ec);
    slist_ptr list;
    curl_ptr  c             = make_handle(t.url, t.headers, list);
    s.handle                = c.get();
    const std::string range = std::to_string(s.offset) + "-";
    if (s.offset > 0) {
        curl_easy_setopt(c.get(), CURLOPT_RANGE, range.c_str());
    }
    curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &s.headers);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, write_file);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.get(), CURLOPT_XFERINFODATA, &s);
    const CURLcode rc = curl_easy_perform(c.get());
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &result.status);
    const bool flushed = std::fflush(out) == 0;
    closer.reset();
    result.size = fs::file_size(t.file, ec);
    if (auto it = s.headers.find("x-error-code"); it != s.headers.end()) {
        result.error_code = it->second;
    }
    result.overflow = s.overflow;
    if (s.overflow && flushed) {
        result.error    = "the server sent more than the file's " + std::to_string(s.limit) + " bytes; stopped there";
        result.complete = result.size == s.limit;
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        result.error = "interrupted";
    } else if (rc != CURLE_OK) {
        result.error = curl_easy_strerror(rc);
    } else if (!flushed) {
        result.error = "cannot write " + t.file;
    } else if (result.status != 200 && result.status != 206) {
        result.error = describe_status(result.status, result.error_code);
        if (auto it = s.headers.find("x-error-message"); it != s.headers.end()) {
            result.error += ": " + it->second;
        }
    } else {
        result.complete = true;
    }
    return result;
}

transfer_result download_resuming(const transfer & t, uint64_t size, int attempts) {
    std::error_code ec;
    transfer_result r;
    for (int attempt = 0; attempt < attempts; ++attempt) {
        const uint64_t have = fs::exists(t.file, ec) ? fs::file_size(t.file, ec) : 0;
        if (size > 0 && have == size) {  // an earlier transfer ended after its last byte
            r.complete = true, r.size = have, r.error.clear();
            return r;
        }
        transfer sized = t;
        sized.size     = size;
        r              = download(sized);
        if (r.complete && (size == 0 || r.size == size)) {
            return r;
        }
        r.complete = false;
        if (t.cancel && t.cancel->load()) {
            return r;
        }
        if (r.status == 416 || (size > 0 && r.size > size)) {
            fs::remove(t.file, ec);
            if (t.restart) {
                t.restart();
            }
        } else if (r.status >= 400) {
            return r;
        }
        if (r.error.empty()) {
            r.error = "the transfer ended early";
        }
    }
    return r;
}

std::string describe_status(long status, const std::string & error_code) {
    return "HTTP " + std::to_string(status) + (error_code.empty() ? std::string() : " (" + error_code + ")");
}

}  // namespace dior::http
