// Pull: the caller's side of a set of blob downloads (start, progress,
// results); the worker is in blob_download.cpp, the readers in blob_stream.cpp.
#include <unistd.h>

#include <chrono>
#include <map>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/image/pull_state.hpp"
#include "engine/image/reference.hpp"

namespace banger::image {

void Pull::State::fail(Blob& b, const std::string& code, const std::string& msg) {
  b.status = BlobStatus::failed;
  b.err_code = code;
  b.err_msg = msg;
  if (first_code.empty() && code != "ECANCELED") {
    first_code = code;
    first_msg = msg;
  }
  stop = true;
  ++version;
  cv.notify_all();
}

FetchProgress Pull::State::snapshot() const {
  FetchProgress p;
  for (size_t bi : of_request) {
    const Blob& b = *blobs[bi];
    BlobProgress bp{b.req.digest, 0, b.req.size, b.status == BlobStatus::cached,
                    b.status == BlobStatus::cached || b.status == BlobStatus::done};
    bp.done = bp.finished ? b.req.size : b.written;
    p.done += bp.done;
    p.total += bp.total;
    p.blobs.push_back(std::move(bp));
  }
  return p;
}

Pull::Pull(const BlobCache& cache, std::vector<BlobRequest> reqs, const FetchOptions& opts) : st_(std::make_shared<State>()) {
  curl::global_init();
  st_->cache = &cache;
  st_->opts = opts;
  std::map<std::string, size_t> seen;
  for (auto& r : reqs) {
    check_digest(r.digest, "blob request");
    if (auto it = seen.find(r.digest); it != seen.end()) {
      st_->of_request.push_back(it->second);
      continue;
    }
    auto b = std::make_unique<Blob>();
    b->req = std::move(r);
    b->final_path = cache.path(b->req.digest);
    if (cache.has(b->req.digest, b->req.size)) {
      if (!opts.verify_cached || cache.verify(b->req.digest)) {
        b->status = BlobStatus::cached;
      } else {
        ::unlink(b->final_path.c_str());  // corrupt: fetch it again
      }
    }
    seen[b->req.digest] = st_->blobs.size();
    st_->of_request.push_back(st_->blobs.size());
    st_->blobs.push_back(std::move(b));
  }
  worker_ = std::thread([st = st_] { st->run(); });
}

Pull::~Pull() {
  {
    std::lock_guard lk(st_->mu);
    st_->stop = true;
  }
  if (worker_.joinable()) worker_.join();
}

FetchProgress Pull::progress() const {
  std::lock_guard lk(st_->mu);
  return st_->snapshot();
}

FetchResult Pull::wait(const ProgressFn& progress) {
  using clock = std::chrono::steady_clock;
  auto last = clock::time_point{};
  std::uint64_t seen = ~0ull;
  for (;;) {
    FetchProgress p;
    bool done;
    {
      std::unique_lock lk(st_->mu);
      st_->cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return st_->finished || st_->version != seen; });
      done = st_->finished;
      seen = st_->version;
      if (progress) p = st_->snapshot();
    }
    auto now = clock::now();
    if (progress && (done || now - last >= std::chrono::milliseconds(100))) {
      last = now;
      progress(p);
    }
    if (done) break;
  }
  if (worker_.joinable()) worker_.join();
  std::lock_guard lk(st_->mu);
  if (!st_->first_code.empty()) throw Error(st_->first_code, st_->first_msg);
  FetchResult r;
  for (size_t bi : st_->of_request) {
    Blob& b = *st_->blobs[bi];
    if (b.status != BlobStatus::done && b.status != BlobStatus::cached)
      throw Error(b.err_code.empty() ? "ECANCELED" : b.err_code, b.err_msg);
    r.paths.push_back(b.final_path);
  }
  r.downloaded_blobs = st_->downloaded_blobs;
  r.downloaded_bytes = st_->downloaded_bytes;
  return r;
}

FetchResult fetch_blobs(const BlobCache& cache, const std::vector<BlobRequest>& blobs, const FetchOptions& opts,
                        const ProgressFn& progress) {
  FetchResult total;
  for (int round = 0;; ++round) {
    Pull p(cache, blobs, opts);
    FetchResult r = p.wait(progress);
    total.paths = r.paths;
    total.downloaded_blobs += r.downloaded_blobs;
    total.downloaded_bytes += r.downloaded_bytes;
    bool all = true;
    for (auto& b : blobs) all = all && cache.has(b.digest, b.size);
    if (all) return total;
    if (round == 2) throw Error("EAGAIN", "blob cache " + cache.dir() + " was emptied repeatedly during the pull");
  }
}

}  // namespace banger::image
