#include "engine/archive/tar.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::archive {
namespace {

using Reader = std::unique_ptr<struct archive, decltype(&archive_read_free)>;
using Writer = std::unique_ptr<struct archive, decltype(&archive_write_free)>;

[[noreturn]] void fail(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  throw Error("EARCHIVE", what + ": " + (msg ? msg : "libarchive error"));
}

// Refuses what libarchive's own checks would also refuse, but with a message
// naming the entry (and before anything of it is written).
void check_name(const std::string& name, const char* what) {
  if (name.empty()) throw Error("EINVAL", std::string("archive entry with an empty ") + what);
  if (name.front() == '/') throw Error("EINVAL", std::string("archive ") + what + " is absolute: " + name);
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) {
      throw Error("EINVAL", std::string("archive ") + what + " leaves the destination: " + name);
    }
    start = end + 1;
  }
}

// A symlink at `name` pointing to `target` must resolve inside the tree,
// judged by the names alone (every directory on the way is one the archive
// made, and none of them is a symlink: _SECURE_SYMLINKS).
void check_link_inside(const std::string& name, const std::string& target) {
  if (target.empty() || target.front() == '/') {
    throw Error("EINVAL", "archive symlink " + name + " points outside the tree: " + target);
  }
  // The link's directory ("a/./b/link": a/b, depth 2), then the target
  // from there; going above depth 0 leaves the tree.
  long depth = 0;
  auto walk = [&](std::string_view path) {
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find('/', start);
      if (end == std::string_view::npos) end = path.size();
      std::string_view part = path.substr(start, end - start);
      if (part == "..") {
        if (--depth < 0) throw Error("EINVAL", "archive symlink " + name + " points outside the tree: " + target);
      } else if (!part.empty() && part != ".") {
        ++depth;
      }
      start = end + 1;
    }
  };
  size_t slash = name.rfind('/');
  if (slash != std::string::npos) walk(std::string_view(name).substr(0, slash));
  walk(target);
}

}  // namespace

ExtractResult extract_tar(const std::string& tar_path, const std::string& dest, const ExtractOptions& opts) {
  const std::uint64_t max_bytes = opts.max_bytes;
  Reader in(archive_read_new(), archive_read_free);
  Writer out(archive_write_disk_new(), archive_write_free);
  if (!in || !out) throw Error("ENOMEM", "libarchive");
  archive_read_support_format_tar(in.get());
  archive_read_support_format_gnutar(in.get());
  archive_read_support_filter_none(in.get());
  if (opts.zstd) archive_read_support_filter_zstd(in.get());
  // No ARCHIVE_EXTRACT_OWNER or _PERM: files belong to us and lose set-id
  // bits. Names are checked relative above, then prefixed with the real
  // destination path (libarchive has no directory-descriptor API here), so
  // _NOABSOLUTEPATHS cannot be used; _SECURE_SYMLINKS refuses any write
  // through a symlink, which is why the prefix is resolved first.
  // Strict mode restores permission bits (a release's executables keep
  // their modes whatever the umask); set-id bits are refused before that.
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                                (opts.strict ? ARCHIVE_EXTRACT_PERM : 0));
  char* real = ::realpath(dest.c_str(), nullptr);
  if (!real) throw Error::last("realpath", dest);
  const std::string root = real;
  std::free(real);
  if (archive_read_open_filename(in.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK) fail(in.get(), tar_path);
  ExtractResult result;
  archive_entry* e = nullptr;
  for (;;) {
    cancel::check();
    int r = archive_read_next_header(in.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) fail(in.get(), tar_path);
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    check_name(name, "path");
    if (const char* link = archive_entry_hardlink(e)) check_name(link, "hardlink target");
    mode_t type = archive_entry_filetype(e);
    bool hardlink = archive_entry_hardlink(e) != nullptr;
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
      if (opts.strict) throw Error("EINVAL", "archive entry " + name + " is not a file, directory or symlink");
      ++result.skipped;
      continue;
    }
    if (opts.strict) {
      if (archive_entry_perm(e) & 07000) {
        throw Error("EINVAL", "archive entry " + name + " has a set-id or sticky bit");
      }
      if (type == AE_IFLNK && !hardlink) {
        const char* target = archive_entry_symlink(e);
        check_link_inside(name, target ? target : "");
      }
    }
    result.bytes += static_cast<std::uint64_t>(std::max<la_int64_t>(0, archive_entry_size(e)));
    if (result.bytes > max_bytes) {
      throw Error("EFBIG", "archive content exceeds " + std::to_string(max_bytes) + " bytes (at " + name + ")");
    }
    archive_entry_set_pathname(e, (root + "/" + name).c_str());
    if (hardlink) archive_entry_set_hardlink(e, (root + "/" + archive_entry_hardlink(e)).c_str());
    if (archive_write_header(out.get(), e) != ARCHIVE_OK) fail(out.get(), "cannot extract " + name);
    if (type == AE_IFREG && archive_entry_size(e) > 0) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      while ((r = archive_read_data_block(in.get(), &buf, &size, &offset)) == ARCHIVE_OK) {
        if (archive_write_data_block(out.get(), buf, size, offset) != ARCHIVE_OK) fail(out.get(), name);
      }
      if (r != ARCHIVE_EOF) fail(in.get(), name);
    }
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK) fail(out.get(), name);
    ++result.entries;
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) fail(out.get(), dest);
  return result;
}

std::uint64_t create_tar(const std::string& tar_path, const std::string& root, const std::vector<std::string>& files) {
  Writer out(archive_write_new(), archive_write_free);
  if (!out) throw Error("ENOMEM", "libarchive");
  archive_write_set_format_pax_restricted(out.get());
  if (archive_write_open_filename(out.get(), tar_path.c_str()) != ARCHIVE_OK) fail(out.get(), tar_path);
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  std::uint64_t written = 0;
  for (const auto& rel : files) {
    cancel::check();
    check_name(rel, "path");
    std::string src = root + "/" + rel;
    struct stat st {};
    if (::lstat(src.c_str(), &st) != 0) throw Error::last("lstat", src);
    archive_entry_clear(e.get());
    archive_entry_copy_stat(e.get(), &st);
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    std::string target;
    if (S_ISLNK(st.st_mode)) {
      target.resize(static_cast<size_t>(st.st_size) + 1);
      ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
      if (n < 0) throw Error::last("readlink", src);
      target.resize(static_cast<size_t>(n));
      archive_entry_set_symlink(e.get(), target.c_str());
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      continue;  // sockets, fifos, devices have no place in a workspace
    }
    if (archive_write_header(out.get(), e.get()) != ARCHIVE_OK) fail(out.get(), rel);
    if (S_ISREG(st.st_mode)) {
      UniqueFd fd(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) throw Error::last("open", src);
      char buf[1 << 16];
      for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) throw Error::last("read", src);
        if (n == 0) break;
        if (archive_write_data(out.get(), buf, static_cast<size_t>(n)) < 0) fail(out.get(), rel);
      }
    }
    ++written;
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) fail(out.get(), tar_path);
  return written;
}

}  // namespace banger::archive
