#include "engine/core/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger {

FileLock::FileLock(const std::string& path, bool exclusive, std::optional<std::chrono::milliseconds> timeout)
    : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) throw Error::last("open lock", path);
  const int op = exclusive ? LOCK_EX : LOCK_SH;
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (::flock(fd_, op | LOCK_NB) == 0) return;
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int e = errno;
      ::close(fd_);
      throw Error::sys(e, "flock", path);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd_);
      throw Error("EBUSY", "another banger command holds " + path);
    }
    try {
      cancel::check();
    } catch (...) {
      ::close(fd_);
      throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

FileLock::~FileLock() { unlock(); }

void FileLock::unlock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the flock
  fd_ = -1;
}

}  // namespace banger
