// Growing, fitting and the journal. libext2fs has no resize call; resize2fs
// is e2fsprogs' tool for it (as mke2fs is for creation), run on the closed
// image. Growing a fresh image is cheap (new groups are uninitialized);
// shrinking one whose data sits at the front, as libext2fs allocates it,
// mostly drops empty groups (about 20 ms from 4 GiB to 365 MiB, measured).
#include <algorithm>
#include <filesystem>
#include <string>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/ext4/impl.hpp"

namespace banger::ext4 {
namespace {

std::string run_tool(std::vector<std::string> argv) {
  process::SpawnOptions o;
  o.argv = std::move(argv);
  auto r = process::run(o);
  if (r.status.shell_code() != 0) throw Error("EIO", o.argv[0] + " " + o.argv.back() + ": " + r.err + r.out);
  return r.out;
}

// resize2fs's estimate of the smallest size the content fits in, in blocks.
std::uint64_t minimum_blocks(const std::string& path) {
  std::string out = run_tool({"resize2fs", "-P", path});
  auto colon = out.rfind(':');
  if (colon == std::string::npos) throw Error("EIO", "resize2fs -P " + path + ": unexpected output: " + out);
  return std::stoull(out.substr(colon + 1));
}

}  // namespace

void Filesystem::set_growth_limit(std::uint64_t max_bytes) { impl_->grow_limit = max_bytes; }

bool Filesystem::make_room(std::uint64_t bytes, std::uint64_t inodes) {
  if (!impl_->grow_limit) return bytes <= free_bytes();
  ext2_filsys fs = impl_->fs;
  const std::uint64_t bs = fs->blocksize;
  // Beside the data: extent tree blocks, a directory block, an xattr block,
  // and missing parent directories.
  const std::uint64_t need_blocks = (bytes + bs - 1) / bs + bytes / bs / 256 + 64;
  const std::uint64_t need_inodes = inodes + 64;
  const std::uint64_t free_blocks = ext2fs_free_blocks_count(fs->super);
  if (free_blocks >= need_blocks && free_inodes() >= need_inodes) return true;

  const std::uint64_t total = ext2fs_blocks_count(fs->super);
  const std::uint64_t limit = impl_->grow_limit / bs;
  const std::uint64_t used_inodes = fs->super->s_inodes_count - fs->super->s_free_inodes_count;
  // Inodes come with block groups; double, or more when one entry needs more.
  std::uint64_t groups_for_inodes = (used_inodes + need_inodes * 2 + fs->super->s_inodes_per_group - 1) /
                                    fs->super->s_inodes_per_group;
  std::uint64_t want = std::max({total * 2, total - free_blocks + need_blocks * 2,
                                 groups_for_inodes * fs->super->s_blocks_per_group});
  want = std::min(want, limit);
  if (want <= total || want - (total - free_blocks) < need_blocks) return false;
  resize(want * bs);
  return free_bytes() / bs >= need_blocks && free_inodes() >= need_inodes;
}

std::uint64_t Filesystem::resize(std::uint64_t bytes) {
  const std::uint64_t bs = impl_->fs->blocksize;
  const std::uint64_t current = ext2fs_blocks_count(impl_->fs->super);
  std::uint64_t blocks = bytes / bs;
  impl_->close_fs(path_);
  if (blocks < current) blocks = std::max(blocks, minimum_blocks(path_));
  // -f: the image was never mounted, so resize2fs's "run e2fsck first"
  // check (meant for filesystems with a history) does not apply.
  if (blocks != current) run_tool({"resize2fs", "-f", path_, std::to_string(blocks)});
  impl_->open_fs(path_);
  return size_bytes();
}

// Growing a work disk with data on it: the order makes every instant one
// the next command can use. 1. The file is extended (sparse, one
// ftruncate): a disk larger than its filesystem is what every part accepts
// (banger's initramfs grows the filesystem online at boot, and the next
// grow() finds the file already long enough and only grows the
// filesystem). 2. e2fsck -fp: a guest has mounted this filesystem, so
// resize2fs wants a fresh check; preening replays a journal left by a
// killed VM and fixes only what is safe, and stops at anything else
// (exit 4: the message names the image, e2fsck -fy is the user's call).
// 3. resize2fs writes the new groups into the added space and the
// superblock last; killed during it, the filesystem may need that
// e2fsck -fy, which the next grow's step 2 reports. resize2fs, not
// libext2fs: libext2fs has no resize call (see the top of this file).
std::uint64_t grow(const std::string& path, std::uint64_t bytes) {
  if (bytes % 1024 != 0) throw Error("EINVAL", path + ": " + std::to_string(bytes) + " is not a whole number of KiB");
  std::uint64_t fs_bytes = Filesystem::open(path, false)->size_bytes();
  const std::uint64_t file_bytes = std::filesystem::file_size(path);
  const std::uint64_t current = std::max(fs_bytes, file_bytes);
  if (bytes < current) {
    throw Error("EINVAL", "cannot shrink " + path + " from " + std::to_string(current) + " to " +
                              std::to_string(bytes) + " bytes: a filesystem only grows");
  }
  if (file_bytes < bytes) std::filesystem::resize_file(path, bytes);
  if (fs_bytes < bytes) {
    process::SpawnOptions check;
    check.argv = {"e2fsck", "-fp", path};
    auto r = process::run(check);
    // 0: clean; 1: fixed (a journal replayed, counts corrected)
    if (r.status.shell_code() > 1) {
      throw Error("EIO", "e2fsck -fp " + path + " (exit " + std::to_string(r.status.shell_code()) +
                             "): " + r.err + r.out + "; run e2fsck -fy on it, then try again");
    }
    run_tool({"resize2fs", path, std::to_string(bytes / 1024) + "K"});
    fs_bytes = Filesystem::open(path, false)->size_bytes();
  }
  return fs_bytes;
}

bool Filesystem::has_journal() const { return ext2fs_has_feature_journal(impl_->fs->super); }

void Filesystem::add_journal() {
  if (has_journal()) return;
  ext2fs_journal_params params{};
  check(ext2fs_get_journal_params(&params, impl_->fs), "journal size for " + path_);
  // Zeroed (no LAZYINIT): blocks freed by whiteouts may hold old data, and a
  // journal must never replay stale blocks. The image was created by us and
  // is not mounted, hence no mount check.
  check(ext2fs_add_journal_inode3(impl_->fs, &params, ~0ULL, EXT2_MKJOURNAL_NO_MNT_CHECK), "add a journal to " + path_);
}

}  // namespace banger::ext4
