#pragma once
// What a Pull's worker thread (blob_download.cpp), its readers
// (blob_stream.cpp) and its caller (pull.cpp) share. Internal to engine/image.
#include <curl/curl.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/core/curl_handles.hpp"
#include "engine/core/sha256.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/image/cache.hpp"

namespace banger::image {

enum class BlobStatus { pending, cached, running, done, failed };

struct Blob {
  BlobRequest req;
  BlobStatus status = BlobStatus::pending;
  std::uint64_t written = 0;
  UniqueFd fd;  // the temporary, O_RDWR, while running (readers dup it under the lock)
  std::string tmp;
  std::string final_path;
  std::string err_code, err_msg;
  // Worker-only state.
  Pull::State* owner = nullptr;  // for curl's callbacks
  std::unique_ptr<Sha256> hash;
  curl::Easy easy;
  curl::Headers headers;
  bool attached = false;  // added to the worker's multi handle
  bool too_big = false;
  char errbuf[CURL_ERROR_SIZE] = {};
};

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

  // Caller holds mu. Marks `b` failed and stops the other downloads: the
  // image is unusable anyway.
  void fail(Blob& b, const std::string& code, const std::string& msg);
  // Caller holds mu. Counts where the downloads are.
  FetchProgress snapshot() const;

  // The worker (blob_download.cpp).
  void run();
  void download(CURLM* m);
  void start(Blob& b, CURLM* m);
  void finish(Blob& b, CURLcode rc);
  void commit(Blob& b);
};

}  // namespace banger::image
