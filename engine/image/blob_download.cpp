// The parallel downloader: Pull's worker thread drives curl multi, streams
// each blob into a temporary beside its final name, hashes it as it arrives
// and renames it to its digest once digest and size match.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "engine/core/atomic_file.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/core/write_all.hpp"
#include "engine/image/pull_state.hpp"

namespace banger::image {
namespace {

size_t on_blob_data(char* p, size_t size, size_t n, void* u) {
  Blob& b = *static_cast<Blob*>(u);
  size_t len = size * n;
  if (b.written + len > b.req.size) {
    b.too_big = true;
    return 0;
  }
  try {
    write_all(b.fd.get(), std::string_view(p, len), b.tmp);
    b.hash->update(p, len);
  } catch (...) {
    return 0;  // curl reports CURLE_WRITE_ERROR
  }
  Pull::State& st = *b.owner;
  std::lock_guard lk(st.mu);
  b.written += len;
  ++st.version;
  st.cv.notify_all();
  return len;
}

int on_blob_progress(void* u, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<Pull::State*>(u);
  if (cancel::requested()) return 1;
  std::lock_guard lk(st->mu);
  return st->stop ? 1 : 0;
}

// Detaches every blob still attached when the loop ends, by an error
// included: curl wants its easy handles out of a multi before either goes.
struct Detach {
  CURLM* m;
  std::vector<std::unique_ptr<Blob>>& blobs;
  ~Detach() {
    for (auto& b : blobs) {
      // A failure here has no one left to report to; the handle is freed anyway.
      if (b->attached) curl_multi_remove_handle(m, b->easy.get());
      b->attached = false;
      b->easy.reset();
    }
  }
};

void configure(Blob& b) {
  CURL* h = b.easy.get();
  const FetchOptions& opts = b.owner->opts;
  curl_easy_setopt(h, CURLOPT_PRIVATE, &b);
  curl::set_common_options(h, b.req.url, "http,https", b.errbuf,
                           {.connect_timeout_s = opts.connect_timeout_s, .low_speed_time_s = opts.low_speed_time_s});
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, b.headers.get());
  curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_blob_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_blob_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, b.owner);
}

}  // namespace

void Pull::State::start(Blob& b, CURLM* m) {
  cache->ensure_layout();
  b.final_path = cache->path(b.req.digest);
  b.tmp = temp_name(cache->blobs_dir() + "/.tmp-" + b.req.digest.substr(7) + "-");
  UniqueFd fd(::open(b.tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) throw Error::last("create", b.tmp);
  try {
    b.owner = this;
    b.hash = std::make_unique<Sha256>();
    b.easy = curl::make_easy();
    for (auto& h : b.req.headers) b.headers.append(h);
    configure(b);
    // Added before the descriptor is published: curl calls back only from
    // curl_multi_perform, on this thread, later.
    curl::check(curl_multi_add_handle(m, b.easy.get()), "curl_multi_add_handle");
  } catch (...) {
    b.easy.reset();
    ::unlink(b.tmp.c_str());
    throw;
  }
  b.attached = true;
  std::lock_guard lk(mu);
  b.fd = std::move(fd);
  b.status = BlobStatus::running;
  ++version;
  cv.notify_all();
}

// Moves a verified temporary to its digest name. When a prune moved the cache
// away meanwhile, the temporary is gone from its path; the bytes are then
// copied (and re-verified) from our still-open descriptor into the new cache.
void Pull::State::commit(Blob& b) {
  if (::fsync(b.fd.get()) != 0) throw Error::last("fsync", b.tmp);
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
    ssize_t n = ::pread(b.fd.get(), buf.data(), buf.size(), off);
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
  curl_easy_getinfo(b.easy.get(), CURLINFO_RESPONSE_CODE, &status);
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
    b.status = BlobStatus::done;
    ++downloaded_blobs;
    downloaded_bytes += b.written;
    ++version;
    cv.notify_all();
  } else {
    ::unlink(b.tmp.c_str());
    fail(b, code, msg);
  }
  b.fd.reset();
}

void Pull::State::download(CURLM* m) {
  Detach detach{m, blobs};
  size_t next = 0;
  int active = 0;
  for (;;) {
    bool stopping;
    {
      std::lock_guard lk(mu);
      if (cancel::requested()) stop = true;
      stopping = stop;
    }
    while (!stopping && active < std::max(1, opts.parallel) && next < blobs.size()) {
      Blob& b = *blobs[next++];
      if (b.status != BlobStatus::pending) continue;
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
    curl::check(curl_multi_perform(m, &still), "curl_multi_perform");
    while (CURLMsg* msg = curl_multi_info_read(m, &still)) {
      if (msg->msg != CURLMSG_DONE) continue;
      void* priv = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      Blob& b = *static_cast<Blob*>(priv);
      finish(b, msg->data.result);
      // msg points into the multi handle: read it before removing the easy one.
      curl::check(curl_multi_remove_handle(m, b.easy.get()), "curl_multi_remove_handle");
      b.attached = false;
      b.easy.reset();
      b.headers = {};
      --active;
    }
    if (active > 0) curl::check(curl_multi_poll(m, nullptr, 0, 100, nullptr), "curl_multi_poll");
  }
}

void Pull::State::run() {
  try {
    curl::Multi m = curl::make_multi();
    download(m.get());
  } catch (const Error& e) {
    // A failure of curl itself (out of memory, a broken poll): every blob
    // still in flight ends with it below.
    std::lock_guard lk(mu);
    if (first_code.empty()) {
      first_code = e.code();
      first_msg = e.what();
    }
    stop = true;
  }
  std::lock_guard lk(mu);
  for (auto& b : blobs) {
    if (b->status == BlobStatus::running) ::unlink(b->tmp.c_str());
    if (b->status == BlobStatus::pending || b->status == BlobStatus::running) {
      fail(*b, "ECANCELED", "blob " + b->req.digest + ": " + (cancel::requested() ? "interrupted" : "download stopped"));
      b->fd.reset();
    }
  }
  finished = true;
  ++version;
  cv.notify_all();
}

}  // namespace banger::image
