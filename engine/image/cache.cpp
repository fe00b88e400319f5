#include "engine/image/cache.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>

#include "engine/core/atomic_file.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"

namespace banger::image {
namespace fs = std::filesystem;
namespace {

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno != EINTR) throw Error::last("getrandom");
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* hx = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hx[c >> 4];
    out += hx[c & 15];
  }
  return out;
}

void mkdir_p(const std::string& d) {
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw Error(errno_name(ec.value()), "create directory " + d + ": " + ec.message());
  struct stat st{};
  if (::lstat(d.c_str(), &st) != 0) throw Error::last("stat", d);
  if (!S_ISDIR(st.st_mode)) throw Error("EUNSAFE", d + " is not a directory (symlink?)");
}

void write_all(int fd, const char* p, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error::last("write", what);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string hex_of(const std::string& digest) { return digest.substr(7); }

}  // namespace

// --- BlobCache -----------------------------------------------------------

BlobCache::BlobCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) throw Error("EINVAL", "blob cache: empty directory name");
  ensure_layout();
}

void BlobCache::ensure_layout() const {
  // Each level is checked: a planted symlink anywhere would redirect writes.
  mkdir_p(dir_);
  mkdir_p(dir_ + "/blobs");
  mkdir_p(blobs_dir());
  std::string layout = dir_ + "/oci-layout";
  struct stat st{};
  if (::lstat(layout.c_str(), &st) != 0) atomic_write_file(layout, "{\"imageLayoutVersion\":\"1.0.0\"}\n", 0644);
}

std::string BlobCache::path(const std::string& digest) const {
  check_digest(digest, "blob cache");
  return blobs_dir() + "/" + hex_of(digest);
}

bool BlobCache::has(const std::string& digest, std::uint64_t size) const {
  struct stat st{};
  if (::lstat(path(digest).c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size;
}

bool BlobCache::verify(const std::string& digest) const {
  std::string p = path(digest);
  struct stat st{};
  if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  auto src = open_file_source(p);  // the lstat above rules out a symlink planted at the path
  Sha256 h;
  for (auto chunk = src->read(); !chunk.empty(); chunk = src->read()) h.update(chunk.data(), chunk.size());
  return "sha256:" + h.hex() == digest;
}

std::string BlobCache::put(const std::string& digest, std::string_view data) const {
  std::string p = path(digest);
  std::string actual = "sha256:" + sha256_hex(data);
  if (actual != digest) throw Error("EDIGEST", "blob " + digest + " hashes to " + actual);
  if (!has(digest, data.size())) {
    ensure_layout();
    atomic_write_file(p, data, 0644);
  }
  return p;
}

// --- Pull ----------------------------------------------------------------

namespace {

enum class Status { pending, cached, running, done, failed };

struct Blob {
  BlobRequest req;
  Status status = Status::pending;
  std::uint64_t written = 0;
  int fd = -1;  // the temporary, O_RDWR, while running (readers dup it under the lock)
  std::string tmp;
  std::string final_path;
  std::string err_code, err_msg;
  // Worker-only state.
  std::unique_ptr<Sha256> hash;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  bool too_big = false;
  char errbuf[CURL_ERROR_SIZE] = {};
};

}  // namespace

struct Pull::State {
  std::mutex mu;
  std::condition_variable cv;
  const BlobCache* cache = nullptr;
  FetchOptions opts;
  std::vector<std::unique_ptr<Blob>> blobs;  // unique digests
  std::vector<size_t> of_request;           // request index -> blobs index
  bool stop = false;
  bool finished = false;
  std::uint64_t version = 0;
  std::string first_code, first_msg;
  std::uint64_t downloaded_blobs = 0, downloaded_bytes = 0;

  void fail(Blob& b, const std::string& code, const std::string& msg) {
    // Caller holds mu.
    b.status = Status::failed;
    b.err_code = code;
    b.err_msg = msg;
    if (first_code.empty() && code != "ECANCELED") {
      first_code = code;
      first_msg = msg;
    }
    stop = true;  // fail fast: the image is unusable anyway
    ++version;
    cv.notify_all();
  }

  void run();
  void start(Blob& b, CURLM* m);
  void finish(Blob& b, CURLcode rc);
  void commit(Blob& b);
};

namespace {

struct WriteCtx {
  Pull::State* st;
  Blob* b;
};

size_t on_blob_data(char* p, size_t size, size_t n, void* u) {
  auto* c = static_cast<WriteCtx*>(u);
  size_t len = size * n;
  Blob& b = *c->b;
  if (b.written + len > b.req.size) {
    b.too_big = true;
    return 0;
  }
  try {
    write_all(b.fd, p, len, b.tmp);
    b.hash->update(p, len);
  } catch (...) {
    return 0;
  }
  std::lock_guard lk(c->st->mu);
  b.written += len;
  ++c->st->version;
  c->st->cv.notify_all();
  return len;
}

int on_blob_progress(void* u, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<Pull::State*>(u);
  if (cancel::requested()) return 1;
  std::lock_guard lk(st->mu);
  return st->stop ? 1 : 0;
}

}  // namespace

void Pull::State::start(Blob& b, CURLM* m) {
  cache->ensure_layout();
  b.final_path = cache->path(b.req.digest);
  b.tmp = cache->blobs_dir() + "/.tmp-" + hex_of(b.req.digest) + "-" + random_hex(6);
  int fd = ::open(b.tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw Error::last("create", b.tmp);
  b.hash = std::make_unique<Sha256>();
  b.easy = curl_easy_init();
  if (!b.easy) {
    ::close(fd);
    ::unlink(b.tmp.c_str());
    throw Error("ENOMEM", "curl_easy_init");
  }
  for (auto& h : b.req.headers) b.headers = curl_slist_append(b.headers, h.c_str());
  auto* ctx = new WriteCtx{this, &b};
  CURL* h = b.easy;
  curl_easy_setopt(h, CURLOPT_PRIVATE, ctx);
  curl_easy_setopt(h, CURLOPT_URL, b.req.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, b.headers);
  // Registries redirect blobs to storage hosts; curl drops our Authorization
  // header when the host changes.
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, b.errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_blob_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, ctx);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_blob_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, opts.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, opts.low_speed_time_s);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "banger");
  {
    std::lock_guard lk(mu);
    b.fd = fd;
    b.status = Status::running;
    ++version;
    cv.notify_all();
  }
  curl_multi_add_handle(m, h);
}

// Moves a verified temporary to its digest name. When a prune moved the cache
// away meanwhile, the temporary is gone from its path; the bytes are then
// copied (and re-verified) from our still-open descriptor into the new cache.
void Pull::State::commit(Blob& b) {
  if (::fsync(b.fd) != 0) throw Error::last("fsync", b.tmp);
  if (::rename(b.tmp.c_str(), b.final_path.c_str()) == 0) {
    fsync_dir(cache->blobs_dir());
    return;
  }
  if (errno != ENOENT) throw Error::last("rename", b.tmp);
  cache->ensure_layout();
  AtomicFile out(b.final_path, 0644);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(b.fd, buf.data(), buf.size(), off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::last("read", b.tmp);
    }
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    out.write(std::string_view(buf.data(), static_cast<size_t>(n)));
    off += n;
  }
  if ("sha256:" + h.hex() != b.req.digest) throw Error("EDIGEST", "blob " + b.req.digest + " changed while being re-homed");
  out.commit();
}

void Pull::State::finish(Blob& b, CURLcode rc) {
  long status = 0;
  curl_easy_getinfo(b.easy, CURLINFO_RESPONSE_CODE, &status);
  std::string code, msg;
  std::string what = "blob " + b.req.digest + " from " + b.req.url;
  if (rc != CURLE_OK) {
    if (cancel::requested() || (rc == CURLE_ABORTED_BY_CALLBACK)) {
      code = "ECANCELED";
      msg = what + ": interrupted";
    } else if (b.too_big) {
      code = "EDIGEST";
      msg = what + ": larger than the " + std::to_string(b.req.size) + " bytes its descriptor says";
    } else if (status == 404) {
      code = "ENOENT";
      msg = what + ": not found (HTTP 404)";
    } else if (status == 401 || status == 403) {
      code = "EACCES";
      msg = what + ": access denied (HTTP " + std::to_string(status) + ")";
    } else {
      code = rc == CURLE_OPERATION_TIMEDOUT ? "ETIMEDOUT" : "EFETCH";
      msg = what + ": " + (b.errbuf[0] ? b.errbuf : curl_easy_strerror(rc));
    }
  } else if (b.written != b.req.size) {
    code = "EDIGEST";
    msg = what + ": got " + std::to_string(b.written) + " bytes, descriptor says " + std::to_string(b.req.size);
  } else if (std::string got = "sha256:" + b.hash->hex(); got != b.req.digest) {
    code = "EDIGEST";
    msg = what + ": content hashes to " + got;
  } else {
    try {
      commit(b);
    } catch (const Error& e) {
      code = e.code();
      msg = e.what();
    }
  }
  std::lock_guard lk(mu);
  if (code.empty()) {
    b.status = Status::done;
    ++downloaded_blobs;
    downloaded_bytes += b.written;
    ++version;
    cv.notify_all();
  } else {
    ::unlink(b.tmp.c_str());
    fail(b, code, msg);
  }
  ::close(b.fd);
  b.fd = -1;
}

void Pull::State::run() {
  CURLM* m = curl_multi_init();
  size_t next = 0;
  int active = 0;
  auto cleanup = [&](Blob& b) {
    curl_multi_remove_handle(m, b.easy);
    void* ctx = nullptr;
    curl_easy_getinfo(b.easy, CURLINFO_PRIVATE, &ctx);
    delete static_cast<WriteCtx*>(ctx);
    curl_easy_cleanup(b.easy);
    b.easy = nullptr;
    curl_slist_free_all(b.headers);
    b.headers = nullptr;
    --active;
  };
  for (;;) {
    bool stopping;
    {
      std::lock_guard lk(mu);
      if (cancel::requested()) stop = true;
      stopping = stop;
    }
    while (!stopping && active < std::max(1, opts.parallel) && next < blobs.size()) {
      Blob& b = *blobs[next++];
      if (b.status != Status::pending) continue;
      try {
        start(b, m);
        ++active;
      } catch (const Error& e) {
        std::lock_guard lk(mu);
        fail(b, e.code(), e.what());
        stopping = true;
      }
    }
    if (active == 0 && (stopping || next >= blobs.size())) break;
    int still = 0;
    curl_multi_perform(m, &still);
    while (CURLMsg* msg = curl_multi_info_read(m, &still)) {
      if (msg->msg != CURLMSG_DONE) continue;
      void* ctx = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &ctx);
      Blob& b = *static_cast<WriteCtx*>(ctx)->b;
      CURLcode rc = msg->data.result;
      finish(b, rc);
      cleanup(b);
    }
    if (active > 0) curl_multi_poll(m, nullptr, 0, 100, nullptr);
  }
  curl_multi_cleanup(m);
  std::lock_guard lk(mu);
  for (auto& b : blobs) {
    if (b->status == Status::pending || b->status == Status::running) {
      fail(*b, "ECANCELED", "blob " + b->req.digest + ": " + (cancel::requested() ? "interrupted" : "download stopped"));
    }
  }
  finished = true;
  ++version;
  cv.notify_all();
}

Pull::Pull(const BlobCache& cache, std::vector<BlobRequest> reqs, const FetchOptions& opts) : st_(std::make_shared<State>()) {
  static const bool inited = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)inited;
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
        b->status = Status::cached;
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

namespace {
// Caller holds st.mu.
FetchProgress snapshot(const Pull::State& st);
}  // namespace

FetchProgress Pull::progress() const {
  std::lock_guard lk(st_->mu);
  return snapshot(*st_);
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
      if (progress) p = snapshot(*st_);
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
    if (b.status != Status::done && b.status != Status::cached) throw Error(b.err_code.empty() ? "ECANCELED" : b.err_code, b.err_msg);
    r.paths.push_back(b.final_path);
  }
  r.downloaded_blobs = st_->downloaded_blobs;
  r.downloaded_bytes = st_->downloaded_bytes;
  return r;
}

namespace {

FetchProgress snapshot(const Pull::State& st) {
  FetchProgress p;
  for (size_t bi : st.of_request) {
    const Blob& b = *st.blobs[bi];
    BlobProgress bp{b.req.digest, 0, b.req.size, b.status == Status::cached,
                    b.status == Status::cached || b.status == Status::done};
    bp.done = bp.finished ? b.req.size : b.written;
    p.done += bp.done;
    p.total += bp.total;
    p.blobs.push_back(std::move(bp));
  }
  return p;
}

class BlobStream final : public ByteSource {
 public:
  BlobStream(std::shared_ptr<Pull::State> st, size_t bi) : st_(std::move(st)), bi_(bi), buf_(1 << 20) {
    std::lock_guard lk(st_->mu);
    digest_ = st_->blobs[bi_]->req.digest;  // set once: describe() may be called from another thread
  }
  ~BlobStream() override {
    if (fd_ >= 0) ::close(fd_);
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
        if (b.status == Status::failed) {
          // Stopped because another blob failed: that failure is the news.
          if (b.err_code == "ECANCELED" && !st_->first_code.empty()) throw Error(st_->first_code, st_->first_msg);
          throw Error(b.err_code, b.err_msg);
        }
        if (fd_ < 0) {
          if (b.status == Status::running) {
            fd_ = ::fcntl(b.fd, F_DUPFD_CLOEXEC, 0);
            if (fd_ < 0) throw Error::last("dup", b.tmp);
          } else if (b.status == Status::cached || b.status == Status::done) {
            fd_ = ::open(b.final_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd_ < 0) throw Error::last("open", b.final_path);
          }
        }
        if (b.status == Status::cached || b.status == Status::done) {
          limit = b.req.size;
          complete = true;
        } else if (b.status == Status::running) {
          limit = b.written;
        }
        if (fd_ < 0 || off_ >= limit) {
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
      ssize_t n = ::pread(fd_, buf_.data(), want, static_cast<off_t>(off_));
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
  int fd_ = -1;
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

// --- prune ---------------------------------------------------------------

namespace {
PruneResult count(const std::string& dir) {
  PruneResult r;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    r.bytes += static_cast<std::uint64_t>(st.st_size);
    std::string name = it->path().filename().string();
    if (it->path().parent_path().filename() == "sha256" && valid_digest("sha256:" + name)) ++r.blobs;
  }
  return r;
}
}  // namespace

PruneResult prune(const std::string& dir_in, bool dry_run) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    throw Error::last("stat", dir);
  }
  if (!S_ISDIR(st.st_mode)) throw Error("EUNSAFE", "blob cache " + dir + " is not a directory (a symlink?)");
  if (dry_run) return count(dir);
  std::string aside = dir + ".pruning-" + random_hex(6);
  if (::rename(dir.c_str(), aside.c_str()) != 0) throw Error::last("rename", dir);
  BlobCache fresh(dir);
  ::chmod(dir.c_str(), st.st_mode & 07777);
  PruneResult r = count(aside);
  std::error_code ec;
  fs::remove_all(aside, ec);
  if (ec) throw Error(errno_name(ec.value()), "remove " + aside + ": " + ec.message());
  return r;
}

}  // namespace banger::image
