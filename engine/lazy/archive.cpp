// libarchive, loaded when banger first reads or writes an archive (layers,
// kernel packages, initramfs images).
#include <archive.h>
#include <archive_entry.h>

#include <cstdio>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libarchive.so.13";
using Entry = struct archive_entry;
using Archive = struct archive;
}  // namespace

BANGER_LAZY(kLib, Entry*, archive_entry_clear, (Entry * e), (e))
BANGER_LAZY(kLib, void, archive_entry_copy_stat, (Entry * e, const struct stat* st), (e, st))
BANGER_LAZY(kLib, __LA_MODE_T, archive_entry_filetype, (Entry * e), (e))
BANGER_LAZY(kLib, void, archive_entry_free, (Entry * e), (e))
BANGER_LAZY(kLib, la_int64_t, archive_entry_gid, (Entry * e), (e))
BANGER_LAZY(kLib, const char*, archive_entry_hardlink, (Entry * e), (e))
BANGER_LAZY(kLib, time_t, archive_entry_mtime, (Entry * e), (e))
BANGER_LAZY(kLib, long, archive_entry_mtime_nsec, (Entry * e), (e))
BANGER_LAZY(kLib, Entry*, archive_entry_new, (void), ())
BANGER_LAZY(kLib, const char*, archive_entry_pathname, (Entry * e), (e))
BANGER_LAZY(kLib, __LA_MODE_T, archive_entry_perm, (Entry * e), (e))
BANGER_LAZY(kLib, dev_t, archive_entry_rdevmajor, (Entry * e), (e))
BANGER_LAZY(kLib, dev_t, archive_entry_rdevminor, (Entry * e), (e))
BANGER_LAZY(kLib, void, archive_entry_set_filetype, (Entry * e, unsigned int type), (e, type))
BANGER_LAZY(kLib, void, archive_entry_set_gid, (Entry * e, la_int64_t gid), (e, gid))
BANGER_LAZY(kLib, void, archive_entry_set_hardlink, (Entry * e, const char* target), (e, target))
BANGER_LAZY(kLib, void, archive_entry_set_mtime, (Entry * e, time_t sec, long nsec), (e, sec, nsec))
BANGER_LAZY(kLib, void, archive_entry_set_pathname, (Entry * e, const char* path), (e, path))
BANGER_LAZY(kLib, void, archive_entry_set_perm, (Entry * e, __LA_MODE_T perm), (e, perm))
BANGER_LAZY(kLib, void, archive_entry_set_rdev, (Entry * e, dev_t dev), (e, dev))
BANGER_LAZY(kLib, void, archive_entry_set_rdevmajor, (Entry * e, dev_t m), (e, m))
BANGER_LAZY(kLib, void, archive_entry_set_rdevminor, (Entry * e, dev_t m), (e, m))
BANGER_LAZY(kLib, void, archive_entry_set_size, (Entry * e, la_int64_t size), (e, size))
BANGER_LAZY(kLib, void, archive_entry_set_symlink, (Entry * e, const char* target), (e, target))
BANGER_LAZY(kLib, void, archive_entry_set_uid, (Entry * e, la_int64_t uid), (e, uid))
BANGER_LAZY(kLib, la_int64_t, archive_entry_size, (Entry * e), (e))
BANGER_LAZY(kLib, int, archive_entry_size_is_set, (Entry * e), (e))
BANGER_LAZY(kLib, const char*, archive_entry_symlink, (Entry * e), (e))
BANGER_LAZY(kLib, la_int64_t, archive_entry_uid, (Entry * e), (e))
BANGER_LAZY(kLib, void, archive_entry_xattr_add_entry, (Entry * e, const char* name, const void* value, size_t size),
            (e, name, value, size))
BANGER_LAZY(kLib, int, archive_entry_xattr_next, (Entry * e, const char** name, const void** value, size_t* size),
            (e, name, value, size))
BANGER_LAZY(kLib, int, archive_entry_xattr_reset, (Entry * e), (e))
BANGER_LAZY(kLib, const char*, archive_error_string, (Archive * a), (a))
BANGER_LAZY(kLib, la_ssize_t, archive_read_data, (Archive * a, void* buf, size_t size), (a, buf, size))
BANGER_LAZY(kLib, int, archive_read_data_block, (Archive * a, const void** buff, size_t* size, la_int64_t* offset),
            (a, buff, size, offset))
BANGER_LAZY(kLib, int, archive_read_data_skip, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_free, (Archive * a), (a))
BANGER_LAZY(kLib, Archive*, archive_read_new, (void), ())
BANGER_LAZY(kLib, int, archive_read_next_header, (Archive * a, Entry** e), (a, e))
BANGER_LAZY(kLib, int, archive_read_open,
            (Archive * a, void* data, archive_open_callback* open, archive_read_callback* read,
             archive_close_callback* close),
            (a, data, open, read, close))
BANGER_LAZY(kLib, int, archive_read_open_filename, (Archive * a, const char* name, size_t block), (a, name, block))
BANGER_LAZY(kLib, int, archive_read_open_memory, (Archive * a, const void* buf, size_t size), (a, buf, size))
BANGER_LAZY(kLib, int, archive_read_support_filter_all, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_filter_none, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_filter_zstd, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_format_all, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_format_gnutar, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_format_raw, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_read_support_format_tar, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_add_filter_none, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_close, (Archive * a), (a))
BANGER_LAZY(kLib, la_ssize_t, archive_write_data, (Archive * a, const void* buf, size_t size), (a, buf, size))
BANGER_LAZY(kLib, la_ssize_t, archive_write_data_block, (Archive * a, const void* buf, size_t size, la_int64_t offset),
            (a, buf, size, offset))
BANGER_LAZY(kLib, Archive*, archive_write_disk_new, (void), ())
BANGER_LAZY(kLib, int, archive_write_disk_set_options, (Archive * a, int flags), (a, flags))
BANGER_LAZY(kLib, int, archive_write_finish_entry, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_free, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_header, (Archive * a, Entry* e), (a, e))
BANGER_LAZY(kLib, Archive*, archive_write_new, (void), ())
BANGER_LAZY(kLib, int, archive_write_open,
            (Archive * a, void* data, archive_open_callback* open, archive_write_callback* write,
             archive_close_callback* close),
            (a, data, open, write, close))
BANGER_LAZY(kLib, int, archive_write_open_fd, (Archive * a, int fd), (a, fd))
BANGER_LAZY(kLib, int, archive_write_open_filename, (Archive * a, const char* file), (a, file))
BANGER_LAZY(kLib, int, archive_write_set_format_cpio_newc, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_set_format_pax, (Archive * a), (a))
BANGER_LAZY(kLib, int, archive_write_set_format_pax_restricted, (Archive * a), (a))

// printf-like: formatted here, handed on as one string.
extern "C" void archive_set_error(Archive* a, int err, const char* fmt, ...) {
  static const auto real =
      reinterpret_cast<void (*)(Archive*, int, const char*, ...)>(banger::lazy::symbol(kLib, "archive_set_error"));
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  real(a, err, "%s", msg);
}
