#include "growfs.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

// e2fsprogs' ext2_fs.h and the kernel's fs/ext4/ext4.h define it; neither is
// a header the static agent can rely on.
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, __u64)
#endif

namespace banger::agent {
namespace {

std::uint64_t le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Superblock {
  std::uint64_t block_size;
  std::uint64_t blocks;
};

// The fields of the on-disk superblock (1024 bytes at offset 1024) that
// growth needs. Read through the block device's page cache, which is where
// the mounted filesystem keeps its own copy, so it is current.
Superblock read_superblock(int fd, const std::string& device) {
  unsigned char sb[1024];
  ssize_t n = ::pread(fd, sb, sizeof sb, 1024);
  if (n < 0) throw Error::last("read the superblock of", device);
  if (n != static_cast<ssize_t>(sizeof sb) || le(sb + 0x38, 2) != 0xEF53) {
    throw Error("EINVAL", device + " holds no ext2/3/4 filesystem");
  }
  const std::uint64_t log_block = le(sb + 0x18, 4);
  if (log_block > 6) throw Error("EINVAL", device + ": implausible block size in the superblock");
  const bool is_64bit = (le(sb + 0x60, 4) & 0x80) != 0;  // INCOMPAT_64BIT
  return {1024ULL << log_block, le(sb + 0x4, 4) | (is_64bit ? le(sb + 0x150, 4) << 32 : 0)};
}

std::string size_text(std::uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ULL << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ULL << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(bytes >> 20));
  }
  return buf;
}

}  // namespace

Growth grow_filesystem(const std::string& device, const std::string& mountpoint) {
  UniqueFd dev(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
  if (dev.get() < 0) throw Error::last("open", device);
  struct stat ds {}, ms {};
  if (::fstat(dev.get(), &ds) != 0) throw Error::last("stat", device);
  if (!S_ISBLK(ds.st_mode)) throw Error("EINVAL", device + " is not a block device");
  UniqueFd dir(::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) throw Error::last("open", mountpoint);
  if (::fstat(dir.get(), &ms) != 0) throw Error::last("stat", mountpoint);
  // The ioctl acts on whatever filesystem holds the directory: make sure
  // that is the device whose size we read.
  if (ms.st_dev != ds.st_rdev) throw Error("EINVAL", device + " is not the filesystem mounted at " + mountpoint);

  Growth g;
  if (::ioctl(dev.get(), BLKGETSIZE64, &g.device_bytes) != 0) throw Error::last("size of", device);
  Superblock sb = read_superblock(dev.get(), device);
  g.block_size = sb.block_size;
  g.blocks_before = g.blocks_after = sb.blocks;
  std::uint64_t target = g.device_bytes / sb.block_size;
  if (target <= sb.blocks) return g;

  auto start = std::chrono::steady_clock::now();
  if (::ioctl(dir.get(), EXT4_IOC_RESIZE_FS, &target) != 0) {
    throw Error::last("grow the filesystem on " + device + " to " + size_text(target * sb.block_size) +
                      " (EXT4_IOC_RESIZE_FS)");
  }
  g.elapsed_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
  // The kernel may stop short of `target` (a last block group too small to
  // hold its own metadata is left out), so report what it did.
  g.blocks_after = read_superblock(dev.get(), device).blocks;
  return g;
}

std::string describe(const std::string& device, const Growth& g) {
  if (g.device_bytes / g.block_size < g.blocks_before) {
    return device + ": the filesystem (" + size_text(g.blocks_before * g.block_size) + ") is larger than the disk (" +
           size_text(g.device_bytes) + ")";
  }
  if (g.blocks_after == g.blocks_before) {
    return device + ": the filesystem (" + size_text(g.blocks_before * g.block_size) + ") already fills the disk";
  }
  return "grew " + device + " from " + size_text(g.blocks_before * g.block_size) + " to " +
         size_text(g.blocks_after * g.block_size) + " in " + std::to_string(g.elapsed_us / 1000) + " ms";
}

}  // namespace banger::agent
