// Progress on stderr: a bar on a terminal, a plain line every few seconds otherwise.
#pragma once

#include "dior.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace dior::cli {

class progress {
  public:
    explicit progress(size_t total) : total_(total), tty_(isatty(STDERR_FILENO) != 0), t0_(clock::now()) {}

    // done: images handled so far (embedded, skipped or failed); work: those that cost time.
    void update(size_t done, size_t work, const std::string & current) {
        const double elapsed = seconds();
        const double rate    = work > 0 ? (double)work / elapsed : 0.0;
        const double eta     = rate > 0 ? (double)(total_ - done) / rate : 0.0;
        if (tty_) {
            const int width  = 30;
            const int filled = total_ ? (int)(width * done / total_) : width;
            std::fprintf(stderr, "\r\033[K[%s%s] %zu/%zu %.2f img/s ETA %s  %s", std::string(filled, '#').c_str(),
                         std::string(width - filled, '.').c_str(), done, total_, rate, duration(eta).c_str(),
                         printable(std::filesystem::path(current).filename().string()).c_str());
            if (done == total_) {
                std::fputc('\n', stderr);
            }
        } else if (done == total_ || elapsed - last_ >= 5.0) {
            std::fprintf(stderr, "progress: %zu/%zu images, %.2f img/s, ETA %s\n", done, total_, rate,
                         duration(eta).c_str());
            last_ = elapsed;
        }
        std::fflush(stderr);
    }

    // A message must not be glued to the bar.
    void message(const std::string & line) const {
        std::fprintf(stderr, "%s%s\n", tty_ ? "\r\033[K" : "", line.c_str());
    }

    double seconds() const { return std::chrono::duration<double>(clock::now() - t0_).count(); }

    static std::string duration(double s) {
        char buf[32];
        if (s < 60) {
            std::snprintf(buf, sizeof(buf), "%.0fs", s);
        } else if (s < 3600) {
            std::snprintf(buf, sizeof(buf), "%dm%02ds", (int)s / 60, (int)s % 60);
        } else {
            std::snprintf(buf, sizeof(buf), "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
        }
        return buf;
    }

  private:
    using clock = std::chrono::steady_clock;
    size_t            total_;
    bool              tty_;
    clock::time_point t0_;
    double            last_ = 0;
};

}  // namespace dior::cli
