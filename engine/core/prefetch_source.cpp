#include "engine/core/prefetch_source.hpp"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"

namespace banger {
namespace {

class Prefetch final : public ByteSource {
 public:
  Prefetch(ByteSource& in, size_t depth) : in_(in), depth_(depth < 1 ? 1 : depth) {
    worker_ = std::thread([this] { run(); });
  }

  ~Prefetch() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    in_.cancel();
    worker_.join();
  }

  std::span<const std::byte> read() override {
    std::unique_lock lk(mu_);
    if (!current_.empty()) {
      free_.push_back(std::move(current_));  // the consumer is done with it
      current_.clear();
    }
    cv_.wait(lk, [&] { return !ready_.empty() || ended_; });
    if (ready_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return {};
    }
    current_ = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    return {current_.data(), current_.size()};
  }

  std::string describe() const override { return in_.describe(); }
  void cancel() override { in_.cancel(); }

 private:
  void run() {
    try {
      for (;;) {
        auto chunk = in_.read();  // only this thread touches in_ (but cancel())
        if (chunk.empty()) break;
        std::vector<std::byte> buf;
        {
          std::unique_lock lk(mu_);
          cv_.wait(lk, [&] { return ready_.size() < depth_ || stop_; });
          if (stop_) return;
          if (!free_.empty()) {
            buf = std::move(free_.back());
            free_.pop_back();
          }
        }
        buf.assign(chunk.begin(), chunk.end());
        std::lock_guard lk(mu_);
        ready_.push_back(std::move(buf));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard lk(mu_);
      error_ = std::current_exception();
    }
    std::lock_guard lk(mu_);
    ended_ = true;
    cv_.notify_all();
  }

  ByteSource& in_;
  const size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<std::byte>> ready_;
  std::vector<std::vector<std::byte>> free_;
  std::vector<std::byte> current_;  // what the last read() returned
  std::exception_ptr error_;
  bool stop_ = false, ended_ = false;
  std::thread worker_;  // last: started once everything above exists
};

}  // namespace

std::unique_ptr<ByteSource> prefetch(ByteSource& in, size_t depth) { return std::make_unique<Prefetch>(in, depth); }

}  // namespace banger
