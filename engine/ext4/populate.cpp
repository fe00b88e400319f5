#include "engine/ext4/populate.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>

#include <memory>
#include <set>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::ext4 {
namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

// libarchive pulls bytes from the ByteSource through this callback.
la_ssize_t read_cb(archive* a, void* user, const void** buf) {
  auto* src = static_cast<ByteSource*>(user);
  try {
    auto chunk = src->read();
    *buf = chunk.data();
    return static_cast<la_ssize_t>(chunk.size());
  } catch (const std::exception& e) {
    archive_set_error(a, EIO, "%s", e.what());
    return -1;
  }
}

ArchivePtr open_stream(ByteSource& src) {
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) throw Error("ENOMEM", "archive_read_new");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open(a.get(), &src, nullptr, read_cb, nullptr) != ARCHIVE_OK)
    throw Error("EINVAL", "layer " + src.describe() + ": " + archive_error_string(a.get()));
  return a;
}

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

void remove_if_present(Filesystem& fs, const std::string& path) {
  if (fs.stat(path)) fs.remove(path, true);
}

}  // namespace

LayerStats apply_layer(Filesystem& fs, ByteSource& src, const PopulateOptions& opts) {
  ArchivePtr a = open_stream(src);
  LayerStats stats;
  std::set<std::string> this_layer;  // opaque markers spare entries of their own layer
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    cancel::check();
    const std::string raw = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    std::string path = clean_path(src, raw);
    if (path == "/") continue;  // the root itself
    ++stats.entries;
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

    Owner owner;
    owner.uid = static_cast<std::uint32_t>(archive_entry_uid(e));
    owner.gid = static_cast<std::uint32_t>(archive_entry_gid(e));
    owner.mode = archive_entry_perm(e) & 07777;
    owner.mtime = archive_entry_mtime(e);
    // Parents missing from the archive become plain root-owned directories.
    if (!fs.stat(dir)) fs.mkdir(dir, {0, 0, 0755, -1}, true);

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
          fs.chown(target_path, owner.uid, owner.gid);
          fs.chmod(target_path, owner.mode);
          break;
        case AE_IFREG: {
          la_int64_t size = archive_entry_size(e);
          if (size < 0 || static_cast<std::uint64_t>(size) > opts.max_file_bytes)
            unsafe(src, raw, "declared size " + std::to_string(size) + " is over the limit");
          if (static_cast<std::uint64_t>(size) > fs.free_bytes())
            unsafe(src, raw, "declared size " + std::to_string(size) + " is larger than the space left in the image (" +
                                 std::to_string(fs.free_bytes()) + " bytes)");
          if (existing && existing->type == "directory") fs.remove(target_path, true);
          std::uint64_t got = 0;
          fs.write_from(target_path, owner, [&](char* buf, size_t cap) -> size_t {
            la_ssize_t n = archive_read_data(a.get(), buf, cap);
            if (n < 0) throw Error("EIO", "layer " + src.describe() + ": entry " + raw + ": " + archive_error_string(a.get()));
            got += static_cast<std::uint64_t>(n);
            return static_cast<size_t>(n);
          });
          if (got != static_cast<std::uint64_t>(size)) unsafe(src, raw, "data shorter than its declared size");
          stats.bytes += got;
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
    // Extended attributes (security.capability and friends).
    archive_entry_xattr_reset(e);
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    while (archive_entry_xattr_next(e, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      fs.set_xattr(target_path, xname, std::string_view(static_cast<const char*>(xvalue), xsize));
    }
    this_layer.insert(target_path);
  }
  if (rc != ARCHIVE_EOF) throw Error("EINVAL", "layer " + src.describe() + ": " + archive_error_string(a.get()));
  return stats;
}

std::uint64_t measure_layer(ByteSource& src) {
  ArchivePtr a = open_stream(src);
  std::uint64_t total = 0;
  archive_entry* e = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    cancel::check();
    // Data rounded up to whole 4 KiB blocks, plus an inode-and-dirent allowance.
    std::uint64_t size = archive_entry_size_is_set(e) ? static_cast<std::uint64_t>(archive_entry_size(e)) : 0;
    total += (size + 4095) / 4096 * 4096 + 512;
    archive_read_data_skip(a.get());
  }
  if (rc != ARCHIVE_EOF) throw Error("EINVAL", "layer " + src.describe() + ": " + archive_error_string(a.get()));
  return total;
}

}  // namespace banger::ext4
