#pragma once
// Guest RAM files (memory-backend-file). A VM's RAM file is sparse: only
// the pages the guest has touched hold data. Copying one moves those
// extents alone (SEEK_DATA/SEEK_HOLE + copy_file_range, in the kernel), so
// a 1 GiB guest that used 60 MB costs 60 MB of copying.
#include <cstdint>
#include <string>

#include "engine/core/unique_fd.hpp"

namespace banger::vmm {

// Copies the data extents of `src` into `dst` (an empty file opened for
// writing) and gives `dst` the size of `src`. Returns the bytes copied.
std::uint64_t copy_data_extents(int src, int dst, const std::string& what);

// A RAM file of `bytes` at `path`, opened read-write: created (0600, never
// through a symlink) or truncated, then sized. Sparse: it costs nothing
// until the guest writes.
UniqueFd create_ram_file(const std::string& path, std::uint64_t bytes);

}  // namespace banger::vmm
