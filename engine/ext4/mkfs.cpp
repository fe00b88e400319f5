// Making an empty ext4 filesystem in-process, with libext2fs: the steps of
// e2fsprogs' mke2fs (misc/mke2fs.c main()) for what banger asks of it,
// Debian 12's /etc/mke2fs.conf ext4 defaults with -b 4096 -m 0
// -E root_owner=0:0, so a host without mkfs.ext4 on its PATH (Debian's
// regular users have no sbin there) still builds images. The file is new
// and sparse, hence all zeros: inode tables and the journal need no wipe
// (what mke2fs -E assume_storage_prezeroed=1 does).
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/ext4/impl.hpp"

namespace banger::ext4 {
namespace {

constexpr std::uint64_t kBlockSize = 4096;

// Frees an initialized-but-unwritten filesystem on the way out of an error.
struct FsGuard {
  ext2_filsys fs = nullptr;
  ~FsGuard() {
    if (fs) ext2fs_free(fs);
  }
};

void random_uuid(unsigned char* out) {
  size_t got = 0;
  while (got < 16) {
    ssize_t n = ::getrandom(out + got, 16 - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("getrandom");
    got += static_cast<size_t>(n);
  }
  out[6] = static_cast<unsigned char>((out[6] & 0x0f) | 0x40);  // version 4
  out[8] = static_cast<unsigned char>((out[8] & 0x3f) | 0x80);  // RFC 4122 variant
}

// mke2fs's usage types by size (small below 512 MiB, big from 4 TiB, huge
// from 16 TiB): bytes of data per inode.
std::uint64_t inode_ratio(std::uint64_t size_bytes) {
  constexpr std::uint64_t MiB = 1ULL << 20, TiB = 1ULL << 40;
  if (size_bytes < 512 * MiB) return 4096;
  if (size_bytes < 4 * TiB) return 16384;
  if (size_bytes < 16 * TiB) return 32768;
  return 65536;
}

ext2_super_block parameters(std::uint64_t size_bytes) {
  ext2_super_block p;
  std::memset(&p, 0, sizeof p);
  p.s_rev_level = EXT2_DYNAMIC_REV;
  p.s_log_block_size = 2;  // 1024 << 2
  ext2fs_blocks_count_set(&p, size_bytes / kBlockSize);
  // base_features, then the ext4 type's features (has_journal comes with
  // the journal itself, added last).
  ext2fs_set_feature_sparse_super(&p);
  ext2fs_set_feature_large_file(&p);
  ext2fs_set_feature_filetype(&p);
  ext2fs_set_feature_resize_inode(&p);
  ext2fs_set_feature_dir_index(&p);
  ext2fs_set_feature_xattr(&p);
  ext2fs_set_feature_extents(&p);
  ext2fs_set_feature_huge_file(&p);
  ext2fs_set_feature_flex_bg(&p);
  ext2fs_set_feature_metadata_csum(&p);
  ext2fs_set_feature_64bit(&p);
  ext2fs_set_feature_dir_nlink(&p);
  ext2fs_set_feature_extra_isize(&p);
  p.s_default_mount_opts = EXT2_DEFM_XATTR_USER | EXT2_DEFM_ACL;
  p.s_log_groups_per_flex = 4;  // flex_bg_size 16
  p.s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
  p.s_inode_size = 256;
  p.s_inodes_count = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(size_bytes / inode_ratio(size_bytes), 0xffffffffULL));
  ext2fs_r_blocks_count_set(&p, 0);  // -m 0: nothing reserved for root in a VM disk
  return p;
}

void create_root_and_lost_found(ext2_filsys fs) {
  check(ext2fs_mkdir(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, nullptr), "create the root directory");
  fs->umask = 077;
  check(ext2fs_mkdir(fs, EXT2_ROOT_INO, 0, "lost+found"), "create /lost+found");
  ext2_ino_t lpf = 0;
  check(ext2fs_lookup(fs, EXT2_ROOT_INO, "lost+found", 10, nullptr, &lpf), "look up /lost+found");
  // 16 KiB, as mke2fs leaves it: e2fsck reconnects files there without
  // having to allocate.
  for (std::uint64_t size = kBlockSize; size < 16 * 1024; size += kBlockSize) {
    check(ext2fs_expand_dir(fs, lpf), "expand /lost+found");
  }
  fs->umask = 022;
}

}  // namespace

ext2_filsys make_filesystem(const std::string& path, std::uint64_t size_bytes, const std::string& label, bool journal) {
  if (size_bytes < (8u << 20)) throw Error("EINVAL", "an ext4 image needs at least 8 MiB");
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd) throw Error::last("create", path);
    if (::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0) throw Error::last("truncate", path);
  }

  initialize_ext2_error_table();
  const std::string what = "make an ext4 filesystem in " + path;
  ext2_super_block param = parameters(size_bytes);
  FsGuard g;
  check(ext2fs_initialize(path.c_str(), EXT2_FLAG_EXCLUSIVE | EXT2_FLAG_64BITS, &param, unix_io_manager, &g.fs), what);
  ext2_filsys fs = g.fs;
  ext2_super_block* sb = fs->super;

  sb->s_kbytes_written = 1;
  random_uuid(sb->s_uuid);
  ext2fs_init_csum_seed(fs);
  sb->s_def_hash_version = EXT2_HASH_HALF_MD4;
  random_uuid(reinterpret_cast<unsigned char*>(sb->s_hash_seed));
  sb->s_max_mnt_count = static_cast<std::int16_t>(-1);  // no periodic fsck
  sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
  if (!label.empty()) {
    std::memset(sb->s_volume_name, 0, sizeof sb->s_volume_name);
    std::memcpy(sb->s_volume_name, label.data(), std::min(label.size(), sizeof sb->s_volume_name));
  }

  check(ext2fs_allocate_tables(fs), what + ": allocate group tables");
  check(ext2fs_convert_subcluster_bitmap(fs, &fs->block_map), what);
  blk64_t overhead = 0;
  check(ext2fs_count_used_clusters(fs, sb->s_first_data_block, ext2fs_blocks_count(sb) - 1, &overhead), what);

  // The inode tables are zeros already (a new sparse file): tell the
  // kernel so it skips its lazy zeroing, and give the reserved inodes their
  // checksums.
  for (dgrp_t i = 0; i < fs->group_desc_count; i++) {
    ext2fs_bg_flags_set(fs, i, EXT2_BG_INODE_ZEROED);
    ext2fs_group_desc_csum_set(fs, i);
  }
  {
    std::vector<char> zero(EXT2_INODE_SIZE(sb), 0);
    for (ext2_ino_t ino = 1; ino < EXT2_FIRST_INO(sb); ino++) {
      check(ext2fs_write_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(zero.data()),
                                    static_cast<int>(zero.size())),
            what + ": reserved inodes");
    }
  }
  create_root_and_lost_found(fs);
  for (ext2_ino_t ino = EXT2_ROOT_INO + 1; ino < EXT2_FIRST_INO(sb); ino++) ext2fs_inode_alloc_stats2(fs, ino, +1, 0);
  ext2fs_mark_ib_dirty(fs);
  ext2fs_mark_inode_bitmap2(fs->inode_map, EXT2_BAD_INO);
  ext2fs_inode_alloc_stats2(fs, EXT2_BAD_INO, +1, 0);
  check(ext2fs_update_bb_inode(fs, nullptr), what + ": bad block inode");
  check(ext2fs_create_resize_inode(fs), what + ": reserve blocks for online resize");

  if (journal) {
    ext2fs_journal_params jp{};
    check(ext2fs_get_journal_params(&jp, fs), what + ": journal size");
    check(ext2fs_add_journal_inode3(fs, &jp, ~0ULL, EXT2_MKJOURNAL_LAZYINIT | EXT2_MKJOURNAL_NO_MNT_CHECK),
          what + ": journal");
    overhead += EXT2FS_NUM_B2C(fs, jp.num_journal_blocks + jp.num_fc_blocks);
  }
  overhead += EXT2FS_NUM_B2C(fs, sb->s_first_data_block);
  sb->s_overhead_clusters = static_cast<std::uint32_t>(overhead);

  g.fs = nullptr;
  return fs;
}

void mkfs(const std::string& path, std::uint64_t size_bytes, const std::string& label, bool journal) {
  ext2_filsys fs = make_filesystem(path, size_bytes, label, journal);
  check(ext2fs_close_free(&fs), "make an ext4 filesystem in " + path + ": write");
}

}  // namespace banger::ext4
