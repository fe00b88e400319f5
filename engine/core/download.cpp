#include "engine/core/download.hpp"

#include <curl/curl.h>

#include <exception>
#include <memory>

#include "engine/core/atomic_file.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/curl_handles.hpp"
#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"

namespace banger {
namespace {

struct Sink {
  std::function<void(std::string_view)> write;
  std::uint64_t bytes = 0;
  std::uint64_t max = 0;
  bool too_big = false;
  std::function<void(std::uint64_t, std::uint64_t)> progress;
  // What a callback threw: it cannot cross libcurl's C frames, so the
  // transfer stops and transfer() rethrows it once curl has returned.
  std::exception_ptr failure;
};

size_t on_data(char* ptr, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  size_t len = size * n;
  s->bytes += len;
  if (s->max && s->bytes > s->max) {
    s->too_big = true;
    return 0;  // aborts the transfer
  }
  try {
    s->write(std::string_view(ptr, len));
  } catch (...) {
    s->failure = std::current_exception();
    return 0;
  }
  return len;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* s = static_cast<Sink*>(user);
  if (cancel::requested() || s->failure) return 1;  // curl may call once more after an abort
  if (!s->progress) return 0;
  try {
    s->progress(static_cast<std::uint64_t>(now), static_cast<std::uint64_t>(total));
  } catch (...) {
    s->failure = std::current_exception();
    return 1;
  }
  return 0;
}

void transfer(const std::string& url, Sink& sink, long timeout_s) {
  curl::Easy c = curl::make_easy();
  char errbuf[CURL_ERROR_SIZE] = {};
  // file: is for catalogs and kernels on local disk; a redirect still may
  // only go to http/https.
  curl::set_common_options(c.get(), url, "http,https,file", errbuf, {.total_timeout_s = timeout_s});
  curl_easy_setopt(c.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c.get(), CURLOPT_XFERINFODATA, &sink);
  CURLcode rc = curl_easy_perform(c.get());
  if (sink.failure) std::rethrow_exception(sink.failure);
  if (rc == CURLE_OK) return;
  if (cancel::requested()) throw Error("ECANCELED", "interrupted");
  if (sink.too_big) throw Error("EFBIG", url + ": larger than the allowed " + std::to_string(sink.max) + " bytes");
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  throw Error(status == 404 ? "ENOENT" : "EFETCH", "download " + url + ": " + why);
}

}  // namespace

DownloadResult download(const std::string& url, const std::string& dest, const DownloadOptions& opts) {
  AtomicFile out(dest, 0644);
  Sha256 hash;
  Sink sink;
  sink.max = opts.expected_size ? opts.expected_size : opts.max_bytes;
  sink.progress = opts.progress;
  sink.write = [&](std::string_view data) {
    hash.update(data);
    out.write(data);
  };
  transfer(url, sink, opts.timeout_s);
  DownloadResult r{sink.bytes, hash.hex()};
  if (opts.expected_size && r.bytes != opts.expected_size) {
    throw Error("EDIGEST", "download " + url + ": " + std::to_string(r.bytes) + " bytes, expected " +
                               std::to_string(opts.expected_size));
  }
  if (!opts.expected_sha256.empty() && r.sha256 != opts.expected_sha256) {
    throw Error("EDIGEST", "download " + url + ": sha256 is " + r.sha256 + ", expected " + opts.expected_sha256);
  }
  out.commit();
  return r;
}

std::string fetch_text(const std::string& url, std::uint64_t max_bytes) {
  std::string body;
  Sink sink;
  sink.max = max_bytes;
  sink.write = [&](std::string_view data) { body.append(data); };
  transfer(url, sink, 60);
  return body;
}

}  // namespace banger
