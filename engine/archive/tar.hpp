#pragma once
// Tar archives between host and guest (workspace prepare/export), through
// libarchive. Extraction treats the archive as hostile: it comes out of a
// VM. Nothing may land outside the destination (no absolute paths, no "..",
// no writing through a symlink, no hardlink to outside), only regular
// files, directories and symlinks are created, ownership and set-id bits are
// never restored, and the total size is capped.
#include <cstdint>
#include <string>
#include <vector>

namespace banger::archive {

struct ExtractResult {
  std::uint64_t entries = 0;  // created
  std::uint64_t skipped = 0;  // device nodes, fifos, sockets: never created on the host
  std::uint64_t bytes = 0;
};

struct ExtractOptions {
  std::uint64_t max_bytes = std::uint64_t{1} << 32;
  bool zstd = false;  // also read a zstd-compressed tar
  // For a tree that must come out whole (a release bundle): a device,
  // fifo or socket, a set-id or sticky bit, or a symlink whose target is
  // absolute or leaves the tree is an error instead of being skipped or
  // kept, and the archive's permission bits are restored as they are.
  bool strict = false;
};

// Extracts the tar at `tar_path` into the existing directory `dest`.
// Throws EINVAL naming the entry for anything that would escape `dest`,
// EFBIG when the content exceeds `max_bytes`.
ExtractResult extract_tar(const std::string& tar_path, const std::string& dest, const ExtractOptions& opts);
inline ExtractResult extract_tar(const std::string& tar_path, const std::string& dest, std::uint64_t max_bytes) {
  return extract_tar(tar_path, dest, ExtractOptions{.max_bytes = max_bytes});
}

// Writes a tar of `files` (paths relative to `root`; regular files,
// symlinks and directories as found, never followed) to `tar_path`.
// Returns how many entries were written.
std::uint64_t create_tar(const std::string& tar_path, const std::string& root, const std::vector<std::string>& files);

}  // namespace banger::archive
