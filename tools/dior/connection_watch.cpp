#include "connection_watch.h"

#include <algorithm>
#include <cstddef>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dior::cli {
namespace {

thread_local int64_t t_current = -1;  // the connection this thread serves

// Bytes the kernel has received on a TCP socket; -1 where it cannot tell.
int64_t bytes_received(int fd) {
    tcp_info  info{};
    socklen_t len = sizeof(info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(tcp_info, tcpi_bytes_received) + sizeof(info.tcpi_bytes_received)) {
        return -1;
    }
    return (int64_t)info.tcpi_bytes_received;
}

}  // namespace

connection_watch::connection_watch(connection_limits l) : lim_(l), thread_([this] { watch(); }) {}

connection_watch::~connection_watch() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (auto & [id, c] : conns_) {
        close(c.fd);
    }
}

connection_watch::tracked::tracked(connection_watch & w, int fd) : w_(w), id_(-1) {
    const int dup_fd = dup(fd);  // shutdown() through it reaches the connection, and its number
    if (dup_fd < 0) {            // cannot be reused for another one while we hold it
        return;
    }
    std::lock_guard<std::mutex> lk(w_.mu_);
    id_        = w_.next_id_++;
    conn & c   = w_.conns_[id_];
    c.fd       = dup_fd;
    c.since    = clock::now();
    c.deadline = c.since + std::chrono::seconds(w_.lim_.idle_s + w_.lim_.header_s);
    t_current  = id_;
}

connection_watch::tracked::~tracked() {
    t_current = -1;
    if (id_ < 0) {
        return;
    }
    std::lock_guard<std::mutex> lk(w_.mu_);
    close(w_.conns_.at(id_).fd);
    w_.conns_.erase(id_);
}

void connection_watch::reading_body(int64_t content_length) {
    set_phase(phase::reading, content_length);
}

void connection_watch::handling() {
    set_phase(phase::handling, 0);
}

void connection_watch::answering(int64_t answer_bytes) {
    set_phase(phase::waiting, answer_bytes);
}

void connection_watch::set_phase(phase p, int64_t bytes) {
    std::lock_guard<std::mutex> lk(mu_);
    const auto                  it = conns_.find(t_current);
    if (it == conns_.end()) {
        return;
    }
    conn & c                 = it->second;
    c.p                      = p;
    c.since                  = clock::now();
    const int64_t transfer_s = std::max<int64_t>(bytes, 0) / std::max<int64_t>(lim_.min_rate, 1);
    if (p == phase::reading) {
        c.received = bytes_received(c.fd);
        c.deadline = c.since + std::chrono::seconds(lim_.header_s + (bytes < 0 ? 600 : transfer_s));
    } else if (p == phase::waiting) {
        c.deadline = c.since + std::chrono::seconds(lim_.idle_s + lim_.header_s + transfer_s);
    }
}

void connection_watch::watch() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
        cv_.wait_for(lk, std::chrono::milliseconds(100));
        const auto now = clock::now();
        for (auto & [id, c] : conns_) {
            if (c.is_cut) {
                continue;
            }
            bool late = false;
            if (c.p == phase::waiting) {
                late = now > c.deadline;
            } else if (c.p == phase::reading && c.received < 0) {
                late = now > c.deadline;
            } else if (c.p == phase::reading) {
                const double past_grace = std::chrono::duration<double>(now - c.since).count() - lim_.header_s;
                late = past_grace > 0 && (double)(bytes_received(c.fd) - c.received) < past_grace * lim_.min_rate;
            }
            if (late) {
                shutdown(c.fd, SHUT_RDWR);
                c.is_cut = true;
            }
        }
    }
}

}  // namespace dior::cli
