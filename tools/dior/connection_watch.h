// Deadlines for the connections of dior serve, so that slow clients cannot hold its threads.
//
// A connection is always in one of three phases, each with its own rule:
//   waiting  for a request's headers (a new connection, or a kept-alive one after its last answer):
//            they must be complete within idle + header seconds;
//   reading  the body: after a grace of `header` seconds, at least `min_rate` bytes per second
//            must have arrived on average (TCP_INFO counts them; where it cannot, the body must be
//            in within header + length / min_rate seconds);
//   handling the request (our own work, e.g. embedding an upload): no deadline.
// Writing an answer counts as waiting: the answer must be taken at min_rate, and then the next
// request's headers must come within the same deadline.
// A connection past its deadline is shut down (both directions): the blocked read or write of its
// thread returns at once, and the thread is free for the next connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

namespace dior::cli {

struct connection_limits {
    int     idle_s   = 5;      // a kept-alive connection may wait this long for its next request
    int     header_s = 10;     // a request's headers must arrive within this, and the grace of a body
    int64_t min_rate = 16384;  // bytes per second, for bodies and answers
};

class connection_watch {
  public:
    explicit connection_watch(connection_limits l);
    ~connection_watch();
    connection_watch(const connection_watch &)             = delete;
    connection_watch & operator=(const connection_watch &) = delete;

    // Tracks a socket while it lives (on the thread that serves it): the phase calls below are
    // about this thread's connection.
    class tracked {
      public:
        tracked(connection_watch & w, int fd);
        ~tracked();
        tracked(const tracked &)             = delete;
        tracked & operator=(const tracked &) = delete;

      private:
        connection_watch & w_;
        int64_t            id_;
    };

    void reading_body(int64_t content_length);  // the headers are in (-1: no length given)
    void handling();                            // the body is in: our work, no deadline
    void answering(int64_t answer_bytes);       // the answer is being written; then the next request

  private:
    using clock = std::chrono::steady_clock;
    enum class phase { waiting, reading, handling };
    struct conn {
        int               fd = -1;  // a duplicate: ours until the connection is untracked
        phase             p  = phase::waiting;
        clock::time_point since;
        clock::time_point deadline;      // waiting; reading where TCP_INFO cannot count
        int64_t           received = 0;  // reading: bytes received when it began (-1: cannot count)
        bool              is_cut   = false;
    };

    void set_phase(phase p, int64_t bytes);
    void watch();

    connection_limits       lim_;
    mutable std::mutex      mu_;
    std::condition_variable cv_;
    std::map<int64_t, conn> conns_;
    int64_t                 next_id_ = 0;
    bool                    stop_    = false;
    std::thread             thread_;
};

}  // namespace dior::cli
