#pragma once
// qcow2 overlays written in-process (no qemu-img on the path of every
// `vm create`): a version 3 image with 64 KiB clusters, 16-bit refcounts,
// an empty L1 table, and the backing file's absolute name and format, laid
// out the way `qemu-img create -f qcow2 -o backing_file=..,backing_fmt=..`
// lays it out (docs/qcow2 in QEMU: "qcow2 Image Format").
#include <cstdint>
#include <string>

namespace banger::vmm {

// An O(1) copy-on-write disk: a qcow2 overlay backed by `base`, a raw image
// or (a snapshot's frozen layer) another qcow2 file; `base_format` says which.
// `size_bytes` is the virtual size (rounded up to 512 bytes); 0 takes the
// base's own. An existing file at `overlay` is replaced; a symlink there is
// refused. Throws banger::Error (EINVAL for a bad format, a base that is not
// what `base_format` says, or a size qcow2 cannot describe).
void create_qcow2_overlay(const std::string& base, const std::string& overlay, long long size_bytes,
                          const std::string& base_format = "raw");

// The virtual size recorded in a qcow2 header; throws EINVAL for a file
// that is not qcow2.
std::uint64_t qcow2_virtual_size(const std::string& path);

}  // namespace banger::vmm
