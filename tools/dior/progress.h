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

// Bytes of downloads on stderr: a bar on a terminal, a line every few seconds otherwise; quiet
// for a file that is already whole.
class byte_progress {
  public:
    byte_progress() : tty_(isatty(STDERR_FILENO) != 0) {}

    void update(const std::string & file, uint64_t done, uint64_t total) {
        const auto now = clock::now();
        if (file != file_) {
            finish();
            file_ = file, t0_ = now, start_ = done, last_ = {}, ended_ = false;
        }
        const bool end = total && done >= total;
        if (ended_ || (end && done == start_)) {
            ended_ = true;
            return;  // shown whole already, or whole before it started (cached)
        }
        if (!end && now - last_ < std::chrono::milliseconds(tty_ ? 200 : 5000)) {
            return;
        }
        last_                     = now;
        const double      elapsed = std::chrono::duration<double>(now - t0_).count();
        const double      rate    = elapsed > 0 ? (double)(done - start_) / elapsed : 0.0;
        const double      eta     = rate > 0 && total ? (double)(total - done) / rate : 0.0;
        const std::string num     = mib(done) + (total ? " / " + mib(total) : std::string());
        if (tty_) {
            const int width  = 30;
            const int filled = total ? (int)(width * (double)done / (double)total) : 0;
            std::fprintf(stderr, "\r\033[K%s [%s%s] %s %.1f MiB/s ETA %s", printable(file).c_str(),
                         std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), num.c_str(),
                         rate / 1048576.0, progress::duration(eta).c_str());
        } else {
            std::fprintf(stderr, "download: %s %s, %.1f MiB/s\n", printable(file).c_str(), num.c_str(),
                         rate / 1048576.0);
        }
        open_ = tty_;
        if (end) {
            ended_ = true;
            finish();
        }
        std::fflush(stderr);
    }

    ~byte_progress() { finish(); }

  private:
    using clock = std::chrono::steady_clock;

    static std::string mib(uint64_t b) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%.1f MiB", (double)b / 1048576.0);
        return buf;
    }

    void finish() {
        if (open_) {
            std::fputc('\n', stderr);
            open_ = false;
        }
    }

    bool              tty_;
    bool              open_  = false;
    bool              ended_ = false;
    std::string       file_;
    clock::time_point t0_, last_;
    uint64_t          start_ = 0;
};

}  // namespace dior::cli
