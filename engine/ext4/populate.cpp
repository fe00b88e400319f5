#include "engine/ext4/populate.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <exception>
#include <memory>
#include <set>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/gunzip_source.hpp"
#include "engine/core/prefetch_source.hpp"

namespace banger::ext4 {
namespace {

// A layer being read: the source as given (for names in messages), its
// bytes inflated and read ahead on another thread, and libarchive on top.
class LayerReader {
 public:
  explicit LayerReader(ByteSource& src)
      : src_(src), plain_(gunzip_if_gzip(src)), ahead_(prefetch(*plain_)), a_(archive_read_new(), archive_read_free) {
    if (!a_) throw Error("ENOMEM", "archive_read_new");
    // Other compressions (zstd, xz, ...) are still libarchive's to undo.
    archive_read_support_filter_all(a_.get());
    archive_read_support_format_tar(a_.get());
    archive_read_support_format_gnutar(a_.get());
    if (archive_read_open(a_.get(), this, nullptr, read_cb, nullptr) != ARCHIVE_OK) fail();
  }
  archive* get() { return a_.get(); }

  // libarchive's failure, or the source's own error when that was the cause
  // (EDIGEST, ECANCELED, ... keep their codes).
  [[noreturn]] void fail() {
    if (err_) std::rethrow_exception(err_);
    // libarchive may fail without a message (found by the fuzzer).
    const char* why = archive_error_string(a_.get());
    throw Error("EINVAL", "layer " + src_.describe() + ": " + (why ? why : "not a readable tar archive"));
  }

  // Reads what libarchive left after the end-of-archive blocks, so that the
  // source reaches its end (where digests and checksums are checked).
  void drain() {
    try {
      while (!ahead_->read().empty()) {
      }
    } catch (...) {
      err_ = std::current_exception();
      fail();
    }
  }

 private:
  static la_ssize_t read_cb(archive* a, void* user, const void** buf) {
    auto* self = static_cast<LayerReader*>(user);
    try {
      auto chunk = self->ahead_->read();
      *buf = chunk.data();
      return static_cast<la_ssize_t>(chunk.size());
    } catch (const std::exception& e) {
      self->err_ = std::current_exception();
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
  }

  ByteSource& src_;
  std::unique_ptr<ByteSource> plain_;
  std::unique_ptr<ByteSource> ahead_;  // destroyed (thread joined) before plain_
  std::unique_ptr<archive, decltype(&archive_read_free)> a_;
  std::exception_ptr err_;
};

[[noreturn]] void unsafe(const ByteSource& src, const std::string& entry, const std::string& why) {
  throw Error("EUNSAFE", "layer " + src.describe() + ": entry " + entry + ": " + why);
}

// "./a//b/" -> "/a/b"; rejects what can never be a safe image path.
std::string clean_path(const ByteSource& src, const std::string& raw) {
  if (raw.empty()) unsafe(src, "(empty name)", "empty name");
  if (raw[0] == '/') unsafe(src, raw, "absolute path");
  if (raw.size() > 4096) unsafe(src, raw.substr(0, 64) + "...", "path longer than 4096 bytes");
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t end = raw.find('/', pos);
    if (end == std::string::npos) end = raw.size();
    std::string part = raw.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") unsafe(src, raw, "'..' in the path");
    if (part.size() > 255) unsafe(src, raw, "a name longer than 255 bytes");
    out += "/" + part;
  }
  return out.empty() ? "/" : out;
}

std::string dirname(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string basename(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// Would `target`, read relative to the directory holding the link, climb
// above the image root? Absolute targets start at the root and cannot.
bool climbs_out(const std::string& link_dir, const std::string& target) {
  if (!target.empty() && target[0] == '/') return false;
  long depth = 0;
  for (size_t i = 1; i < link_dir.size(); ++i)
    if (link_dir[i] == '/') ++depth;
  if (link_dir != "/") ++depth;
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t end = target.find('/', pos);
    if (end == std::string::npos) end = target.size();
    std::string part = target.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

Owner owner_of(archive_entry* e) {
  Owner owner;
  owner.uid = static_cast<std::uint32_t>(archive_entry_uid(e));
  owner.gid = static_cast<std::uint32_t>(archive_entry_gid(e));
  owner.mode = archive_entry_perm(e) & 07777;
  owner.mtime = archive_entry_mtime(e);
  owner.mtime_nsec = static_cast<std::uint32_t>(archive_entry_mtime_nsec(e));
  return owner;
}

// Extended attributes (security.capability, ACLs, user.*).
void set_xattrs(Filesystem& fs, const std::string& path, archive_entry* e) {
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
    fs.set_xattr(path, name, std::string_view(static_cast<const char*>(value), size));
}

void remove_if_present(Filesystem& fs, const std::string& path) {
  if (fs.stat(path)) fs.remove(path, true);
}

}  // namespace

LayerStats apply_layer(Filesystem& fs, ByteSource& src, const PopulateOptions& opts) {
  LayerReader reader(src);
  archive* a = reader.get();
  using clock = std::chrono::steady_clock;
  auto next_progress = clock::now();
  LayerStats stats;
  std::set<std::string> this_layer;  // opaque markers spare entries of their own layer
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    cancel::check();
    if (opts.progress && clock::now() >= next_progress) {
      opts.progress(stats);
      next_progress = clock::now() + std::chrono::milliseconds(100);
    }
    const std::string raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    std::string path = clean_path(src, raw);
    if (path == "/") {  // the root itself: only its attributes
      if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e)) unsafe(src, raw, "the root must be a directory");
      fs.set_owner("/", owner_of(e));
      set_xattrs(fs, "/", e);
      continue;
    }
    ++stats.entries;
    stats.content += 512;
    // Resolve directory symlinks inside the image before looking at the name.
    std::string dir = fs.resolve_in_image(dirname(path) + "/x");
    dir = dirname(dir);
    std::string name = basename(path);
    std::string target_path = (dir == "/" ? "" : dir) + "/" + name;

    if (name == ".wh..wh..opq") {
      if (fs.stat(dir)) {
        for (const std::string& child : fs.list(dir)) {
          std::string cp = (dir == "/" ? "" : dir) + "/" + child;
          if (!this_layer.count(cp)) fs.remove(cp, true);
        }
      }
      ++stats.whiteouts;
      continue;
    }
    if (name.rfind(".wh.", 0) == 0) {
      std::string victim = (dir == "/" ? "" : dir) + "/" + name.substr(4);
      if (name.size() == 4) unsafe(src, raw, "whiteout without a name");
      remove_if_present(fs, victim);
      ++stats.whiteouts;
      continue;
    }

    Owner owner = owner_of(e);
    if (!fs.make_room(0, 1)) unsafe(src, raw, "no inode left in the image");
    // Parents missing from the archive become plain root-owned directories.
    if (!fs.stat(dir)) fs.mkdir(dir, {0, 0, 0755, Owner::now}, true);

    const char* hardlink = archive_entry_hardlink(e);
    auto existing = fs.stat(target_path);
    if (hardlink) {
      std::string link_to = clean_path(src, hardlink);
      std::string resolved = fs.resolve_in_image(link_to);
      if (!fs.stat(resolved)) unsafe(src, raw, "hardlink to " + std::string(hardlink) + ", which is not in the image");
      if (resolved == target_path) continue;
      if (existing) fs.remove(target_path, true);
      fs.hardlink(resolved, target_path);
    } else {
      switch (archive_entry_filetype(e)) {
        case AE_IFDIR:
          if (existing && existing->type != "directory") {
            fs.remove(target_path, true);
            existing.reset();
          }
          if (!existing) fs.mkdir(target_path, owner, false);
          fs.set_owner(target_path, owner);
          break;
        case AE_IFREG: {
          la_int64_t size = archive_entry_size(e);
          if (size < 0 || static_cast<std::uint64_t>(size) > opts.max_file_bytes)
            unsafe(src, raw, "declared size " + std::to_string(size) + " is over the limit");
          // Checked before any data is read (a growable image grows here).
          if (!fs.make_room(static_cast<std::uint64_t>(size)))
            unsafe(src, raw, "declared size " + std::to_string(size) + " is larger than the space left in the image (" +
                                 std::to_string(fs.free_bytes()) + " bytes)");
          if (existing && existing->type == "directory") fs.remove(target_path, true);
          fs.write_from(target_path, owner, static_cast<std::uint64_t>(size), [&](char* buf, size_t cap) -> size_t {
            la_ssize_t n = archive_read_data(a, buf, cap);
            if (n < 0) reader.fail();
            if (n == 0) unsafe(src, raw, "data shorter than its declared size");
            return static_cast<size_t>(n);
          });
          stats.bytes += static_cast<std::uint64_t>(size);
          stats.content += (static_cast<std::uint64_t>(size) + 4095) / 4096 * 4096;
          break;
        }
        case AE_IFLNK: {
          std::string target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
          if (target.empty()) unsafe(src, raw, "symlink without a target");
          if (climbs_out(dir, target)) unsafe(src, raw, "symlink to " + target + " escapes the image root");
          if (existing) fs.remove(target_path, true);
          fs.symlink(target, target_path, owner);
          break;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO: {
          if (existing) fs.remove(target_path, true);
          char t = archive_entry_filetype(e) == AE_IFCHR ? 'c' : archive_entry_filetype(e) == AE_IFBLK ? 'b' : 'p';
          fs.mknod(target_path, t, archive_entry_rdevmajor(e), archive_entry_rdevminor(e), owner);
          break;
        }
        default:
          unsafe(src, raw, "unsupported entry type (sockets are not stored)");
      }
    }
    set_xattrs(fs, target_path, e);
    this_layer.insert(target_path);
  }
  if (rc != ARCHIVE_EOF) reader.fail();
  reader.drain();
  if (opts.progress) opts.progress(stats);
  return stats;
}

std::uint64_t measure_layer(ByteSource& src) {
  LayerReader reader(src);
  archive* a = reader.get();
  std::uint64_t total = 0;
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    cancel::check();
    // Data rounded up to whole 4 KiB blocks, plus an inode-and-dirent allowance.
    std::uint64_t size = archive_entry_size_is_set(e) ? static_cast<std::uint64_t>(archive_entry_size(e)) : 0;
    total += (size + 4095) / 4096 * 4096 + 512;
    archive_read_data_skip(a);
  }
  if (rc != ARCHIVE_EOF) reader.fail();
  reader.drain();
  return total;
}

}  // namespace banger::ext4
