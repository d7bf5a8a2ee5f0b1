// HTTP(S) for downloads, on libcurl (see http.cpp): small GETs and resumable file transfers.
#pragma once

#include "dior.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dior::http {

struct response {
    long                               status = 0;  // 0: no answer (see error)
    std::string                        body;
    std::map<std::string, std::string> headers;  // names in lower case (the last of repeated ones)
    std::string                        error;    // why no answer came (connection, TLS, timeout)
};

using header_list = std::vector<std::string>;  // "Name: value"

// A GET whose answer is read whole (API calls). Follows redirects.
response get(const std::string & url, const header_list & headers = {});

// A transfer into `file`, appended from its current size with a Range request when the file is not
// empty (a server that ignores the range answers 200: the file is then started again). `on_data`
// sees every byte written, in order, after `restart` when the server began again from zero.
struct transfer {
    std::string                                        url;
    header_list                                        headers;
    std::string                                        file;
    std::function<void(const char *, size_t)>          on_data;
    std::function<void()>                              restart;
    std::function<void(uint64_t done, uint64_t total)> progress;  // total 0: unknown
    const std::atomic<bool> *                          cancel = nullptr;
    // The whole file's size when known (a listing's): nothing past it is written, whatever the server
    // sends. 0: the size the server announces (Content-Length), when it announces one.
    uint64_t size = 0;
};

struct transfer_result {
    long        status   = 0;      // final HTTP status; 0 when no answer came
    bool        complete = false;  // the server sent all it announced
    uint64_t    size     = 0;      // the file's size afterwards
    std::string error;             // what went wrong, if anything
    std::string error_code;        // the hub's X-Error-Code header, if any
    bool        overflow = false;  // the server sent more than the file's size: stopped there
};

transfer_result download(const transfer & t);

// download(), resumed up to `attempts` times while transfers break off, until the file holds
// `size` bytes (0: what the server announces); never more than `size` bytes are written (a server
// that sends more is cut off there, and the file is then whole as far as its size goes). A 416 answer, or a file longer
// than `size`, means the partial file does not fit the server's: it is emptied (t.restart is called) and fetched again.
// Stops at an HTTP error and at a cancel. `complete` tells whether the file is whole.
constexpr int   k_resume_attempts = 5;
transfer_result download_resuming(const transfer & t, uint64_t size = 0, int attempts = k_resume_attempts);

// "hub error 401 (GatedRepo)" style text for a status and the server's X-Error-Code.
std::string describe_status(long status, const std::string & error_code);

}  // namespace dior::http
