// Reading a blob while it downloads (Pull::open): the bytes are served as
// they arrive, hashed, and the stream ends only once the blob is verified.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/image/pull_state.hpp"

namespace banger::image {
namespace {

class BlobStream final : public ByteSource {
 public:
  BlobStream(std::shared_ptr<Pull::State> st, size_t bi) : st_(std::move(st)), bi_(bi), buf_(1 << 20) {
    std::lock_guard lk(st_->mu);
    digest_ = st_->blobs[bi_]->req.digest;  // set once: describe() may be called from another thread
  }

  std::span<const std::byte> read() override {
    for (;;) {
      cancel::check();
      if (cancelled_) throw Error("ECANCELED", "blob " + digest_ + ": reading stopped");
      std::uint64_t limit = 0;
      bool complete = false;
      {
        std::unique_lock lk(st_->mu);
        Blob& b = *st_->blobs[bi_];
        if (b.status == BlobStatus::failed) {
          // Stopped because another blob failed: that failure is the news.
          if (b.err_code == "ECANCELED" && !st_->first_code.empty()) throw Error(st_->first_code, st_->first_msg);
          throw Error(b.err_code, b.err_msg);
        }
        if (!fd_) {
          if (b.status == BlobStatus::running) {
            fd_.reset(::fcntl(b.fd.get(), F_DUPFD_CLOEXEC, 0));
            if (!fd_) throw Error::last("dup", b.tmp);
          } else if (b.status == BlobStatus::cached || b.status == BlobStatus::done) {
            fd_.reset(::open(b.final_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
            if (!fd_) throw Error::last("open", b.final_path);
          }
        }
        if (b.status == BlobStatus::cached || b.status == BlobStatus::done) {
          limit = b.req.size;
          complete = true;
        } else if (b.status == BlobStatus::running) {
          limit = b.written;
        }
        if (!fd_ || off_ >= limit) {
          if (complete) {
            // The stream ends only when what we served hashes right: it
            // catches a cached blob corrupted in place.
            if (!ended_) {
              ended_ = true;
              std::string got = "sha256:" + hash_.hex();
              if (got != digest_) throw Error("EDIGEST", "blob " + digest_ + " in the cache is corrupt (hashes to " + got + ")");
            }
            return {};
          }
          st_->cv.wait_for(lk, std::chrono::milliseconds(100));
          continue;
        }
      }
      size_t want = static_cast<size_t>(std::min<std::uint64_t>(limit - off_, buf_.size()));
      ssize_t n = ::pread(fd_.get(), buf_.data(), want, static_cast<off_t>(off_));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw Error::last("read", "blob " + digest_);
      }
      if (n == 0) throw Error("EDIGEST", "blob " + digest_ + " is shorter than its descriptor says");
      off_ += static_cast<std::uint64_t>(n);
      hash_.update(buf_.data(), static_cast<size_t>(n));
      return {buf_.data(), static_cast<size_t>(n)};
    }
  }
  std::string describe() const override { return "blob " + digest_; }
  void cancel() override {
    cancelled_ = true;
    std::lock_guard lk(st_->mu);
    st_->cv.notify_all();
  }

 private:
  std::shared_ptr<Pull::State> st_;
  size_t bi_;
  std::vector<std::byte> buf_;
  UniqueFd fd_;
  std::uint64_t off_ = 0;
  Sha256 hash_;
  std::string digest_;  // const after construction
  bool ended_ = false;
  std::atomic<bool> cancelled_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> Pull::open(size_t index) {
  if (index >= st_->of_request.size()) throw Error("EINVAL", "pull: no blob #" + std::to_string(index));
  return std::make_unique<BlobStream>(st_, st_->of_request[index]);
}

}  // namespace banger::image
