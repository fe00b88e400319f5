#pragma once
// Online growth of a mounted ext4 filesystem to the size of its block
// device, the way resize2fs grows a mounted filesystem (the
// EXT4_IOC_RESIZE_FS ioctl), without e2fsprogs: banger's initramfs runs it
// on the root and work disks at every boot (docs/ext4.md#growing-to-the-disk).
#include <cstdint>
#include <string>

namespace banger::agent {

struct Growth {
  std::uint64_t block_size = 0;
  std::uint64_t blocks_before = 0;
  std::uint64_t blocks_after = 0;  // == blocks_before: nothing to do
  std::uint64_t device_bytes = 0;
  std::uint64_t elapsed_us = 0;    // the ioctl alone
};

// Grows the ext4 filesystem on block device `device`, mounted at
// `mountpoint`, to fill the device; one already that large is left alone.
// Throws banger::Error when `device` is not what is mounted there, is not
// ext4, or the kernel refuses.
Growth grow_filesystem(const std::string& device, const std::string& mountpoint);

// "grew /dev/vda from 343 MiB to 8.0 GiB in 95 ms" (or "... already fills ...").
std::string describe(const std::string& device, const Growth& g);

}  // namespace banger::agent
