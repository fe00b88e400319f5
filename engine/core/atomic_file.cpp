#include "engine/core/atomic_file.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "engine/core/error.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/core/write_all.hpp"

namespace banger {
namespace {

// String operations, not std::filesystem: the static guest agent links this
// file, and std::filesystem::path brings libstdc++'s locale machinery (1 MB).
std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void fsync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw Error::last("open", dir);
  if (::fsync(fd.get()) != 0) throw Error::last("fsync", dir);
}

AtomicFile::AtomicFile(const std::string& path, mode_t mode) : path_(path) {
  std::string stem = dir_of(path) + "/." + base_of(path) + ".tmp-";
  for (int attempt = 0; attempt < 16 && !fd_; ++attempt) {
    temp_ = temp_name(stem);
    fd_.reset(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd_ && errno != EEXIST) throw Error::last("create", temp_);
  }
  if (!fd_) throw Error("EEXIST", "cannot create a temporary file beside " + path);
  // The umask must not loosen or tighten what the caller asked for.
  if (::fchmod(fd_.get(), mode) != 0) {
    Error e = Error::last("chmod", temp_);
    ::unlink(temp_.c_str());
    throw e;
  }
}

AtomicFile::~AtomicFile() {
  fd_.reset();
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) { write_all(fd_.get(), data, temp_); }

void AtomicFile::commit() {
  if (::fsync(fd_.get()) != 0) throw Error::last("fsync", temp_);
  // close(2) can report a deferred write error (NFS): it must count.
  if (::close(fd_.release()) != 0) throw Error::last("close", temp_);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw Error::last("rename", path_);
  committed_ = true;
  fsync_dir(dir_of(path_));
}

void atomic_write_file(const std::string& path, std::string_view content, mode_t mode) {
  AtomicFile f(path, mode);
  f.write(content);
  f.commit();
}

void publish_file(const std::string& temp, const std::string& path, bool no_replace) {
  {
    // fsync through a read-only descriptor flushes the file's data all the
    // same; O_NOFOLLOW: what is published is the file written, not a link.
    UniqueFd fd(::open(temp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw Error::last("open", temp);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw Error::last("stat", temp);
    if (!S_ISREG(st.st_mode)) throw Error("EINVAL", "publish: not a regular file: " + temp);
    if (::fsync(fd.get()) != 0) throw Error::last("fsync", temp);
  }
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), no_replace ? RENAME_NOREPLACE : 0) != 0)
    throw Error::last("rename", temp + " -> " + path);
  fsync_dir(dir_of(path));
  if (dir_of(temp) != dir_of(path)) fsync_dir(dir_of(temp));
}

void exchange_paths(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0)
    throw Error::last("exchange", a + " <-> " + b);
  fsync_dir(dir_of(b));
  if (dir_of(a) != dir_of(b)) fsync_dir(dir_of(a));
}

}  // namespace banger
