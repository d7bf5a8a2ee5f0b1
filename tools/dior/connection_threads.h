// The threads of dior serve's connections: one per connection, `kept` always there and more
// started, up to `most`, whenever the connections waiting outnumber the idle threads. (The
// pinned cpp-httplib's ThreadPool starts one only when no thread is idle, so connections that
// arrive together can wait behind slow ones although it may start more.)
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <httplib.h>
#include <mutex>

namespace dior::cli {

class connection_threads final : public httplib::TaskQueue {
  public:
    // queue: connections that may wait once `most` threads are busy; more are closed at once.
    connection_threads(size_t kept, size_t most, size_t queue);
    ~connection_threads() override;

    bool enqueue(std::function<void()> fn) override;
    void shutdown() override;  // runs what waits, then joins every thread

  private:
    void work(bool kept);

    const size_t                      kept_, most_, queue_;
    std::mutex                        mu_;
    std::condition_variable           cv_, gone_;
    std::deque<std::function<void()>> jobs_;
    size_t                            live_ = 0, idle_ = 0;
    bool                              stop_ = false;
};

}  // namespace dior::cli
