#include "engine/core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "engine/core/error.hpp"

namespace banger {
namespace {

std::string random_suffix() {
  unsigned char b[6];
  if (getrandom(b, sizeof b, 0) != static_cast<ssize_t>(sizeof b)) throw Error::last("getrandom");
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

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
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error::last("open", dir);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) throw Error::sys(e, "fsync", dir);
}

AtomicFile::AtomicFile(const std::string& path, mode_t mode) : path_(path) {
  std::string name = base_of(path);
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_ = dir_of(path) + "/." + name + ".tmp-" + random_suffix();
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd_ < 0 && errno != EEXIST) throw Error::last("create", temp_);
  }
  if (fd_ < 0) throw Error("EEXIST", "cannot create a temporary file beside " + path);
  // The umask must not loosen or tighten what the caller asked for.
  if (::fchmod(fd_, mode) != 0) {
    int e = errno;
    ::close(fd_);
    ::unlink(temp_.c_str());
    throw Error::sys(e, "chmod", temp_);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void AtomicFile::write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::last("write", temp_);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) throw Error::last("fsync", temp_);
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) throw Error::last("close", temp_);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw Error::last("rename", path_);
  committed_ = true;
  fsync_dir(dir_of(path_));
}

void atomic_write_file(const std::string& path, std::string_view content, mode_t mode) {
  AtomicFile f(path, mode);
  f.write(content);
  f.commit();
}

}  // namespace banger
