#include "engine/core/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::net_unix {

UniqueFd connect(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("ENAMETOOLONG", "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw Error::last("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    int e = errno;
    fd.reset();
    if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || std::chrono::steady_clock::now() >= deadline)
      throw Error::sys(e, "connect", path);
    cancel::check();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

UniqueFd bind(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("ENAMETOOLONG", "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw Error::last("socket", path);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw Error::last("bind", path);
  return fd;
}

void write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::last("write", what);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

void write_all_with_fds(int fd, std::string_view data, const std::vector<int>& fds, const std::string& what) {
  if (fds.empty() || data.empty()) return write_all(fd, data, what);
  std::vector<char> control(CMSG_SPACE(fds.size() * sizeof(int)), 0);
  for (;;) {
    iovec iov{const_cast<char*>(data.data()), 1};  // the descriptors ride with the first byte alone
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("sendmsg", what);
    break;
  }
  write_all(fd, data.substr(1), what);
}

std::string read_line(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline,
                      const std::string& what, std::size_t max_line) {
  for (;;) {
    if (auto nl = buffer.find('\n'); nl != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return line;
    }
    if (buffer.size() > max_line) throw Error("EMSGSIZE", what + " sent a line longer than " + std::to_string(max_line) + " bytes");
    cancel::check();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw Error("ETIMEDOUT", "timed out reading from " + what);
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (r < 0 && errno != EINTR) throw Error::last("poll", what);
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", what);
    if (n == 0) throw Error("EPIPE", what + " closed the connection");
    buffer.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace banger::net_unix
