#include "engine/core/write_all.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "engine/core/error.hpp"

namespace banger {

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("write", what);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void pwrite_all(int fd, std::string_view data, off_t off, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("write", what);
    data.remove_prefix(static_cast<size_t>(n));
    off += n;
  }
}

}  // namespace banger
