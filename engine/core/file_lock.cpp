#include "engine/core/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger {

namespace {

// Is `fd` still the file at `path`? Not when a holder removed it meanwhile.
bool still_linked(int fd, const std::string& path) {
  struct stat held {}, named {};
  if (::fstat(fd, &held) != 0) return false;
  if (::lstat(path.c_str(), &named) != 0) return false;
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

}  // namespace

FileLock::FileLock(const std::string& path, bool exclusive, std::optional<std::chrono::milliseconds> timeout)
    : path_(path) {
  const int op = exclusive ? LOCK_EX : LOCK_SH;
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (!fd_) {
      fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd_) throw Error::last("open lock", path);
    }
    if (::flock(fd_.get(), op | LOCK_NB) == 0) {
      if (still_linked(fd_.get(), path)) return;
      fd_.reset();  // locked a file its last holder removed: take the new one
      continue;
    }
    // A throw below closes fd_ (a member of a half-built object).
    if (errno != EWOULDBLOCK && errno != EINTR) throw Error::last("flock", path);
    if (std::chrono::steady_clock::now() >= deadline) throw Error("EBUSY", "another banger command holds " + path);
    cancel::check();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

FileLock::~FileLock() { unlock(); }

void FileLock::unlock() {
  fd_.reset();
}

void FileLock::remove() {
  if (!fd_) return;
  int rc = ::unlink(path_.c_str());
  int e = errno;
  unlock();
  if (rc != 0 && e != ENOENT) throw Error::sys(e, "unlink lock", path_);
}

}  // namespace banger
