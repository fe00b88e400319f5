#pragma once
// The backing chain of a qcow2 image as its headers name it: an overlay,
// the snapshot layers beneath it (qcow2), down to a raw image. Read from
// the headers banger's own overlays carry (written by qemu-img with an
// explicit backing format); the format of a backing file is never probed
// from its content, since a raw disk's first bytes are the guest's to
// write and could pose as a qcow2 header naming any host file.
#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::vmm {

struct Qcow2Backing {
  std::string file;    // as written in the header; empty: no backing file
  std::string format;  // the backing format header extension ("raw", "qcow2"); may be empty
};

// The backing file a qcow2 image names (EINVAL when `fd` is not a qcow2 image).
Qcow2Backing qcow2_backing(int fd, const std::string& what);

// True when the file starts with the qcow2 magic.
bool is_qcow2(int fd);

struct ChainLink {
  std::string path;
  std::string format;  // raw | qcow2
  UniqueFd fd;         // opened read-only by the caller's process
};

// The images below `path` (opened as `fd`, of `format`), nearest first,
// each opened read-only here. A relative name resolves against the
// directory of the image naming it, as QEMU does. Refuses a chain deeper
// than `max_depth`, a backing name without its format, and a format other
// than raw or qcow2.
std::vector<ChainLink> open_backing_chain(int fd, const std::string& path, const std::string& format,
                                          size_t max_depth = 16);

}  // namespace banger::vmm
