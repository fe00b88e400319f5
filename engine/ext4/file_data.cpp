// Regular file contents. A file's size is known before its data (a tar
// header says it), so all its blocks are allocated at once with
// ext2fs_fallocate and the data goes out in large runs straight to the
// image. ext2fs_file_write, by contrast, maps and allocates one block at a
// time and zero-fills every new block before writing it: twice the bytes
// and an extent-tree update per 4 KiB.
#include <algorithm>
#include <cstring>

#include "engine/core/error.hpp"
#include "engine/ext4/impl.hpp"

namespace banger::ext4 {
namespace {

constexpr size_t kRunBytes = 1 << 20;  // the largest single write

struct Run {
  blk64_t lblk, pblk, len;
};

// The file's extents, in logical order.
std::vector<Run> runs_of(ext2_filsys fs, ext2_ino_t ino, ext2_inode_large& in) {
  ext2_extent_handle_t h = nullptr;
  check(ext2fs_extent_open2(fs, ino, reinterpret_cast<ext2_inode*>(&in), &h), "read extents");
  std::vector<Run> runs;
  ext2fs_extent ex{};
  errcode_t rc = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &ex);
  while (!rc) {
    if ((ex.e_flags & EXT2_EXTENT_FLAGS_LEAF) && !(ex.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) && ex.e_len)
      runs.push_back({ex.e_lblk, ex.e_pblk, ex.e_len});
    rc = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &ex);
  }
  ext2fs_extent_free(h);
  if (rc != EXT2_ET_EXTENT_NO_NEXT && rc != EXT2_ET_NO_CURRENT_NODE) fail(rc, "read extents");
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.lblk < b.lblk; });
  return runs;
}

// Exactly `n` bytes from `read` into `buf`.
void fill(const Filesystem::Reader& read, char* buf, size_t n, std::uint64_t at, std::uint64_t size) {
  size_t got = 0;
  while (got < n) {
    size_t r = read(buf + got, n - got);
    if (r == 0)
      throw Error("EIO", "file data ended after " + std::to_string(at + got) + " of " + std::to_string(size) + " bytes");
    got += r;
  }
}

}  // namespace

ext2_ino_t Filesystem::Impl::new_file_inode(ext2_ino_t dir, const Owner& o, std::uint64_t size, const Reader& read) {
  ext2_ino_t ino = new_inode(dir, LINUX_S_IFREG);
  ext2_inode_large in{};
  set_owner(in, o, LINUX_S_IFREG);
  in.i_links_count = 1;
  in.i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  if (ext2fs_has_feature_extents(fs->super)) {
    ext2_extent_handle_t h = nullptr;
    in.i_flags &= ~EXT4_EXTENTS_FL;
    check(ext2fs_extent_open2(fs, ino, reinterpret_cast<ext2_inode*>(&in), &h), "extent header");
    ext2fs_extent_free(h);
  }
  // The size goes in first: fallocate maps initialized blocks only below it.
  check(ext2fs_inode_size_set(fs, reinterpret_cast<ext2_inode*>(&in), size), "set size");
  check(ext2fs_write_new_inode(fs, ino, reinterpret_cast<ext2_inode*>(&in)), "write inode");
  ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
  try {
    if (size > 0) {
      const std::uint64_t bs = fs->blocksize;
      const blk64_t nblocks = (size + bs - 1) / bs;
      // Initialized extents, not zeroed: every block is written below.
      check(ext2fs_fallocate(fs, EXT2_FALLOCATE_FORCE_INIT, ino, reinterpret_cast<ext2_inode*>(&in), ~0ULL, 0, nblocks),
            "allocate " + std::to_string(size) + " bytes");
      put_inode(ino, in);  // so that release_new() finds the blocks to free if the data fails
      if (data_buf.size() < kRunBytes) data_buf.resize(kRunBytes);
      std::uint64_t done = 0;
      blk64_t next = 0;
      for (const Run& r : runs_of(fs, ino, in)) {
        if (r.lblk != next) throw Error("EIO", "allocated blocks of a new file are not contiguous in logical order");
        for (blk64_t b = 0; b < r.len;) {
          blk64_t count = std::min<blk64_t>(r.len - b, kRunBytes / bs);
          size_t want = static_cast<size_t>(std::min<std::uint64_t>(size - done, count * bs));
          fill(read, data_buf.data(), want, done, size);
          std::memset(data_buf.data() + want, 0, static_cast<size_t>(count * bs - want));  // the last block's tail
          check(io_channel_write_blk64(fs->io, r.pblk + b, static_cast<int>(count), data_buf.data()), "write file data");
          done += want;
          b += count;
        }
        next = r.lblk + r.len;
      }
      if (next != nblocks) throw Error("EIO", "a new file got " + std::to_string(next) + " of " + std::to_string(nblocks) + " blocks");
    }
    // fallocate updated the block count and extent root in `in`.
    ext2_inode_large times{};
    set_owner(times, o, LINUX_S_IFREG);
    in.i_mtime = times.i_mtime;
    in.i_mtime_extra = times.i_mtime_extra;
    in.i_atime = times.i_atime;
    in.i_atime_extra = times.i_atime_extra;
    put_inode(ino, in);
  } catch (...) {
    release_new(ino);
    throw;
  }
  return ino;
}

}  // namespace banger::ext4
