#pragma once
// One OCI layer from an ext4 image: every entry of the filesystem, read
// through the ext4 engine (no mount), written as a pax tar (libarchive),
// gzip-compressed with igzip, straight to a file. The layer's digest (of
// the gzip bytes) and its diff_id (of the tar) are computed in the same
// pass; nothing is held in memory beyond one file chunk.
//
// Kept: uid/gid, permission bits incl. setuid/setgid/sticky, mtimes with
// nanoseconds, symlinks, hardlinks (by inode: the first path met in the
// walk's byte order is the file, later ones link to it), character and
// block devices with their numbers, fifos, and every extended attribute
// (security.capability, ACLs, user.*). Sockets cannot be stored in a tar:
// they are left out and listed. The output depends only on the image's
// content, so the same image gives the same digest.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/ext4/filesystem.hpp"

namespace banger::image {

struct LayerResult {
  std::string digest;           // sha256:<hex> of the gzip stream (the blob)
  std::string diff_id;          // sha256:<hex> of the tar
  std::uint64_t size = 0;       // compressed bytes
  std::uint64_t tar_bytes = 0;  // uncompressed bytes
  std::uint64_t entries = 0;
  std::vector<std::string> skipped;  // paths of sockets
};

struct LayerWriteProgress {
  std::uint64_t entries = 0;
  std::uint64_t tar_bytes = 0;
};

// Writes the layer to a new file at `out_path` (created O_EXCL, mode 0600,
// fsynced); on failure, Ctrl-C included, the file is removed. `progress` is
// called on this thread about ten times a second; what it throws stops the
// writing and propagates.
LayerResult write_layer(ext4::Filesystem& fs, const std::string& out_path,
                        const std::function<void(const LayerWriteProgress&)>& progress = {});

}  // namespace banger::image
