#include "connection_threads.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace dior::cli {

namespace {
// A thread beyond the kept ones ends after this long without a connection.
constexpr auto k_idle_end = std::chrono::seconds(30);
}  // namespace

connection_threads::connection_threads(size_t kept, size_t most, size_t queue)
    : kept_(kept), most_(std::max(kept, most)), queue_(queue) {
    std::lock_guard<std::mutex> lk(mu_);
    for (size_t i = 0; i < kept_; ++i) {
        ++live_;
        std::thread([this] { work(true); }).detach();
    }
}

connection_threads::~connection_threads() {
    shutdown();
}

bool connection_threads::enqueue(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_ || (live_ >= most_ && jobs_.size() >= idle_ + queue_)) {
            return false;
        }
        jobs_.push_back(std::move(fn));
        if (jobs_.size() > idle_ && live_ < most_) {  // every waiting connection gets a thread
            ++live_;
            std::thread([this] { work(false); }).detach();
        }
    }
    cv_.notify_one();
    return true;
}

void connection_threads::shutdown() {
    std::unique_lock<std::mutex> lk(mu_);
    stop_ = true;
    cv_.notify_all();
    gone_.wait(lk, [this] { return live_ == 0; });
}

void connection_threads::work(bool kept) {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
        ++idle_;
        const auto ready = [this] { return !jobs_.empty() || stop_; };
        const bool woke  = kept ? (cv_.wait(lk, ready), true) : cv_.wait_for(lk, k_idle_end, ready);
        --idle_;
        if (jobs_.empty() && (stop_ || !woke)) {
            break;
        }
        std::function<void()> fn = std::move(jobs_.front());
        jobs_.pop_front();
        lk.unlock();
        fn();
        fn = nullptr;
        lk.lock();
    }
    --live_;
    std::notify_all_at_thread_exit(gone_, std::move(lk));  // shutdown() returns once we are gone
}

}  // namespace dior::cli
