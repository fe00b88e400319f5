#include "guest_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::agent {
namespace {

[[noreturn]] void fail(int e, const std::string& what, const std::string& path) {
  throw Error(errno_name(e), what + ": " + std::strerror(e) + ": " + path);
}

guest::FileEntry entry_of(const std::string& name, const struct stat& st) {
  const char* type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "link" : "other";
  return {name, type, static_cast<std::uint64_t>(st.st_size), static_cast<unsigned>(st.st_mode & 07777),
          static_cast<std::int64_t>(st.st_mtim.tv_sec)};
}

// The path's parent (opened, following links: the caller named it) and its
// last component. "/" and paths ending in "." or ".." have none to act on.
std::pair<UniqueFd, std::string> split(const std::string& path) {
  if (path.empty() || path[0] != '/') throw Error("EINVAL", "an absolute path is needed: " + path);
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == "/") throw Error("EPERM", "refusing to remove /");
  size_t slash = p.rfind('/');
  std::string base = p.substr(slash + 1), parent = slash == 0 ? "/" : p.substr(0, slash);
  if (base == "." || base == "..") throw Error("EINVAL", "the path must not end in . or ..: " + path);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail(errno, "open", parent);
  return {std::move(dir), base};
}

// Empties the directory `name` in `parent` and removes it. The directory is
// opened with O_NOFOLLOW: a link swapped in for it fails (ELOOP/ENOTDIR)
// instead of being followed.
void remove_tree(int parent, const std::string& name, const std::string& shown, int depth) {
  if (depth > guest::kMaxRemoveDepth) throw Error("ELOOP", "directory tree deeper than " +
                                                  std::to_string(guest::kMaxRemoveDepth) + ": " + shown);
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail(errno, "open", shown);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    fail(e, "opendir", shown);
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{d};
  while (dirent* de = ::readdir(d)) {
    std::string child = de->d_name;
    if (child == "." || child == "..") continue;
    struct stat st {};
    if (::fstatat(fd, child.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      fail(errno, "lstat", shown + "/" + child);
    }
    if (S_ISDIR(st.st_mode)) {
      remove_tree(fd, child, shown + "/" + child, depth + 1);
    } else if (::unlinkat(fd, child.c_str(), 0) != 0 && errno != ENOENT) {
      fail(errno, "unlink", shown + "/" + child);
    }
  }
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) fail(errno, "rmdir", shown);
}

}  // namespace

guest::ListResult list_path(const std::string& path) {
  if (path.empty() || path[0] != '/') throw Error("EINVAL", "an absolute path is needed: " + path);
  guest::ListResult r;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) fail(errno, "lstat", path);
  if (!S_ISDIR(st.st_mode)) {
    std::string name = path.substr(path.rfind('/') + 1);
    r.entries.push_back(entry_of(name.empty() ? path : name, st));
    return r;
  }
  r.dir = true;
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail(errno, "open", path);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    fail(e, "opendir", path);
  }
  size_t bytes = 0;
  while (dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat cst {};
    if (::fstatat(fd, name.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
    guest::FileEntry e = entry_of(name, cst);
    bytes += guest::to_json(guest::ListResult{{e}, false, false})["entries"][0].dump().size() + 1;
    if (r.entries.size() >= guest::kMaxListEntries || bytes > guest::kMaxListBytes) {
      r.truncated = true;
      break;
    }
    r.entries.push_back(std::move(e));
  }
  ::closedir(d);
  return r;
}

void remove_path(const std::string& path, bool recursive) {
  auto [parent, base] = split(path);
  struct stat st {};
  if (::fstatat(parent.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) fail(errno, "lstat", path);
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(parent.get(), base.c_str(), 0) != 0) fail(errno, "unlink", path);
    return;
  }
  if (!recursive) {
    if (::unlinkat(parent.get(), base.c_str(), AT_REMOVEDIR) != 0) fail(errno, "rmdir", path);
    return;
  }
  remove_tree(parent.get(), base, path, 0);
}

}  // namespace banger::agent
