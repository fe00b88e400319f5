#pragma once
// The blob cache: an OCI image layout (`oci-layout` + blobs/sha256/<hex>)
// holding only verified, content-addressed blobs. Downloads run on a worker
// thread with curl multi (several blobs at once); each streams into
// blobs/sha256/.tmp-<hex>-<random>, is hashed as it arrives, and is fsynced
// and renamed to its digest only when the digest and size match. A consumer
// may read a layer while it is still arriving (Pull::open), so layer 1 can be
// unpacked while layers 2..n download. Progress reaches the caller on its own
// thread (Pull::wait), never on the worker, so it may call into Lua.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/byte_source.hpp"
#include "engine/image/registry.hpp"

namespace banger::image {

class BlobCache {
 public:
  // Creates the directory and the layout when missing (mode 0700).
  explicit BlobCache(std::string dir);
  const std::string& dir() const { return dir_; }
  std::string blobs_dir() const { return dir_ + "/blobs/sha256"; }
  // Path of a blob (the digest is validated: it becomes a file name).
  std::string path(const std::string& digest) const;
  // A regular file (not a symlink) of exactly `size` bytes is present.
  bool has(const std::string& digest, std::uint64_t size) const;
  // Re-hashes a present blob; false when missing or corrupt.
  bool verify(const std::string& digest) const;
  // Stores a small verified blob (a manifest, a config) atomically.
  std::string put(const std::string& digest, std::string_view data) const;
  // Recreates the layout if a prune moved the directory away meanwhile.
  void ensure_layout() const;

 private:
  std::string dir_;
};

struct BlobProgress {
  std::string digest;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  bool cached = false;    // was already in the cache
  bool finished = false;  // verified and in place
};

struct FetchProgress {
  std::vector<BlobProgress> blobs;  // in request order
  std::uint64_t done = 0;           // over all blobs, cached ones counted as done
  std::uint64_t total = 0;
};
using ProgressFn = std::function<void(const FetchProgress&)>;

struct FetchOptions {
  int parallel = 4;
  bool verify_cached = true;  // re-hash blobs already in the cache; corrupt ones are fetched again
  long connect_timeout_s = 30;
  long low_speed_time_s = 60;  // abort a blob stalled under 1 byte/s this long
};

struct FetchResult {
  std::vector<std::string> paths;  // in request order
  std::uint64_t downloaded_blobs = 0;
  std::uint64_t downloaded_bytes = 0;
};

// A set of blob downloads in progress. The destructor stops the worker and
// discards unfinished temporaries.
class Pull {
 public:
  Pull(const BlobCache& cache, std::vector<BlobRequest> blobs, const FetchOptions& opts = {});
  ~Pull();
  Pull(const Pull&) = delete;
  Pull& operator=(const Pull&) = delete;

  // The bytes of blob `index` (request order), available as they arrive.
  // The stream is hashed as it is read; it ends only once the blob is
  // verified, and throws (EDIGEST, EFETCH, ECANCELED, ...) if it fails, so a
  // consumer must treat what it read as provisional until the end.
  std::unique_ptr<ByteSource> open(size_t index);

  // Blocks until every blob is done, calling progress on this thread (at
  // most ~10 times a second, and once at the end). Throws the first failure.
  FetchResult wait(const ProgressFn& progress = {});

  // Where the downloads are now, without waiting (for a caller busy
  // consuming the blobs through open()).
  FetchProgress progress() const;

  struct State;

 private:
  std::shared_ptr<State> st_;
  std::thread worker_;
};

// Pull + wait. Blobs removed by a concurrent prune before the call returns
// are fetched again, so the returned paths exist when it returns.
FetchResult fetch_blobs(const BlobCache& cache, const std::vector<BlobRequest>& blobs, const FetchOptions& opts = {},
                        const ProgressFn& progress = {});

struct PruneResult {
  std::uint64_t bytes = 0;
  std::uint64_t blobs = 0;
};
// Empties the cache. The directory is renamed aside (<dir>.pruning-<rand>),
// recreated empty, and the aside copy deleted, so a pull writing into it
// meanwhile never sees a half-deleted tree (its temporaries are re-homed on
// completion). dry_run only counts.
PruneResult prune(const std::string& dir, bool dry_run);

}  // namespace banger::image
