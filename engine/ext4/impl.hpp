#pragma once
// Filesystem's private half, shared by the files that implement it
// (filesystem.cpp: paths and metadata; file_data.cpp: regular file contents;
// resize.cpp: growing, fitting and the journal). Not for use elsewhere.

// com_err.h has no C++ guards of its own.
extern "C" {
#include <et/com_err.h>
}
#include <ext2fs/ext2fs.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "engine/ext4/filesystem.hpp"

namespace banger::ext4 {

[[noreturn]] void fail(errcode_t rc, const std::string& what);
inline void check(errcode_t rc, const std::string& what) {
  if (rc) fail(rc, what);
}
std::uint32_t now32();

// mkfs() without the close: the new filesystem, open for writing and not
// yet written out (mkfs.cpp).
ext2_filsys make_filesystem(const std::string& path, std::uint64_t size_bytes, const std::string& label, bool journal);

struct Filesystem::Impl {
  ext2_filsys fs = nullptr;
  bool writable = false;
  std::uint64_t grow_limit = 0;  // bytes; 0: the image never grows

  // Directory listings, each read from the image once and then kept in step
  // with every change made through this handle. libext2fs directories are
  // linear lists, so without this every path component of every entry of a
  // layer would scan its directory's blocks (and verify their checksums):
  // quadratic in directory size, and most of the time spent writing a layer.
  using Listing = std::unordered_map<std::string, ext2_ino_t>;
  std::unordered_map<ext2_ino_t, Listing> dirs;

  // One buffer for file contents, reused by every write.
  std::vector<char> data_buf;

  Listing& listing(ext2_ino_t dir);
  void forget(ext2_ino_t ino) { dirs.erase(ino); }

  ext2_inode_large inode(ext2_ino_t ino);
  void put_inode(ext2_ino_t ino, ext2_inode_large& in);

  // 0 when `name` is absent from directory `dir`.
  ext2_ino_t lookup(ext2_ino_t dir, const std::string& name);
  // Walks the directories leading to the last component; every one must be
  // a real directory (not a symlink). Returns {parent inode, leaf name}.
  std::pair<ext2_ino_t, std::string> parent_of(std::string_view path, const Owner* create);
  ext2_ino_t resolve(std::string_view path);

  void set_owner(ext2_inode_large& in, const Owner& o, std::uint16_t type_bits);
  ext2_ino_t new_inode(ext2_ino_t dir, std::uint16_t type_bits);
  void link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int type);
  void unlink(ext2_ino_t dir, const std::string& name, ext2_ino_t ino);
  ext2_ino_t make_dir(ext2_ino_t parent, const std::string& name, const Owner& o);
  // Drops one link to `ino`; frees its blocks and the inode at zero.
  void release(ext2_ino_t ino);
  // Frees an inode that was never linked into a directory (best effort).
  void release_new(ext2_ino_t ino);
  void remove_ino(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, bool recursive, const std::string& shown);
  std::string read_ino(ext2_ino_t ino, const std::string& shown);
  Stat stat_ino(ext2_ino_t ino, const std::string& shown);

  // A new, unlinked regular file of exactly `size` bytes taken from `read`
  // (file_data.cpp).
  ext2_ino_t new_file_inode(ext2_ino_t dir, const Owner& o, std::uint64_t size, const Filesystem::Reader& read);

  // Closes and reopens the image around an external tool (resize2fs); the
  // listings are dropped since such tools may renumber inodes.
  void close_fs(const std::string& path);
  void open_fs(const std::string& path);
};

}  // namespace banger::ext4
