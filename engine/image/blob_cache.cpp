// The blob store: content-addressed, verified blobs in an OCI image layout.
#include <sys/stat.h>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/core/make_dirs.hpp"
#include "engine/core/sha256.hpp"
#include "engine/image/cache.hpp"
#include "engine/image/reference.hpp"

namespace banger::image {

BlobCache::BlobCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) throw Error("EINVAL", "blob cache: empty directory name");
  ensure_layout();
}

void BlobCache::ensure_layout() const {
  // Each level is checked: a planted symlink anywhere would redirect writes.
  make_dirs(dir_, 0700, true);
  make_dirs(dir_ + "/blobs", 0700, true);
  make_dirs(blobs_dir(), 0700, true);
  std::string layout = dir_ + "/oci-layout";
  struct stat st {};
  if (::lstat(layout.c_str(), &st) != 0) atomic_write_file(layout, "{\"imageLayoutVersion\":\"1.0.0\"}\n", 0644);
}

std::string BlobCache::path(const std::string& digest) const {
  check_digest(digest, "blob cache");
  return blobs_dir() + "/" + digest.substr(7);
}

bool BlobCache::has(const std::string& digest, std::uint64_t size) const {
  struct stat st {};
  if (::lstat(path(digest).c_str(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size;
}

bool BlobCache::verify(const std::string& digest) const {
  std::string p = path(digest);
  struct stat st {};
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

}  // namespace banger::image
