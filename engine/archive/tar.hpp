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

// Extracts the tar at `tar_path` into the existing directory `dest`.
// Throws EINVAL naming the entry for anything that would escape `dest`,
// EFBIG when the content exceeds `max_bytes`.
ExtractResult extract_tar(const std::string& tar_path, const std::string& dest, std::uint64_t max_bytes);

// Writes a tar of `files` (paths relative to `root`; regular files,
// symlinks and directories as found, never followed) to `tar_path`.
// Returns how many entries were written.
std::uint64_t create_tar(const std::string& tar_path, const std::string& root, const std::vector<std::string>& files);

}  // namespace banger::archive
