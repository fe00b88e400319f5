#pragma once
// Per-VM root disk copies for hypervisors without copy-on-write overlays
// (firecracker takes raw files). A reflink (FICLONE) shares every block with
// the image and costs nothing until the guest writes; where the filesystem
// cannot (ext4, tmpfs), a sparse copy moves only the data and leaves holes
// (and all-zero blocks) unallocated.
#include <cstdint>
#include <string>

namespace banger::vmm {

enum class CloneMethod { reflink, sparse_copy };
const char* to_string(CloneMethod m);

struct CloneResult {
  CloneMethod method = CloneMethod::sparse_copy;
  std::uint64_t size = 0;          // apparent size: the source's, or `size` when larger
  std::uint64_t bytes_written = 0;  // data actually written (0 for a reflink)
};

// Copies the regular file `src` to `dst`, created 0600. Neither is followed
// through a symlink; `dst` must not exist (EEXIST). The copy goes to a
// temporary file beside `dst`, is fsynced and renamed into place without
// replacing anything, so a crash or Ctrl-C (ECANCELED) never leaves a
// partial disk under the final name. A `size` larger than the source's makes
// the copy that large (a hole at the end): the VM's disk size, which the
// guest grows its filesystem into at boot.
CloneResult clone_disk(const std::string& src, const std::string& dst, std::uint64_t size = 0);

}  // namespace banger::vmm
