#include "vsock.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace fakefc {
namespace {

std::string os_error(int e) { return std::string(std::strerror(e)) + " (os error " + std::to_string(e) + ")"; }

bool fill_addr(const std::string& path, sockaddr_un& addr) {
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads "CONNECT <port>\n" the way Firecracker's muxer does: at most 32
// bytes, case-insensitive keyword, decimal u32 port.
bool read_connect(int fd, unsigned& port) {
  char buf[32];
  size_t len = 0;
  while (len < sizeof buf) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    ssize_t r = ::read(fd, buf + len, 1);
    if (r <= 0) return false;
    if (buf[len++] == '\n') break;
  }
  std::string line(buf, len);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  size_t sp = line.find(' ');
  if (sp == std::string::npos) return false;
  std::string word = line.substr(0, sp);
  for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string num = line.substr(sp + 1);
  if (word != "connect" || num.empty() || num.size() > 10) return false;
  for (char c : num) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  unsigned long long v = std::strtoull(num.c_str(), nullptr, 10);
  if (v > 0xffffffffULL) return false;
  port = static_cast<unsigned>(v);
  return true;
}

int connect_backend(unsigned port) {
  const char* env = std::getenv("FAKE_FC_VSOCK_BACKEND");
  if (!env || !*env) return -2;  // echo
  std::string path = env;
  if (auto at = path.find("{port}"); at != std::string::npos) path.replace(at, 6, std::to_string(port));
  sockaddr_un addr{};
  if (!fill_addr(path, addr)) return -1;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Copies bytes both ways until both directions are closed; a half-close on
// one side is passed on as shutdown(SHUT_WR) to the other.
void proxy(int a, int b) {
  bool a_open = true, b_open = true;
  char buf[65536];
  while (a_open || b_open) {
    pollfd fds[2] = {{a, static_cast<short>(a_open ? POLLIN : 0), 0}, {b, static_cast<short>(b_open ? POLLIN : 0), 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      bool& open = i == 0 ? a_open : b_open;
      ssize_t r = ::read(from, buf, sizeof buf);
      if (r > 0) {
        if (!write_all(to, buf, static_cast<size_t>(r))) return;
      } else if (r == 0 || errno != EINTR) {
        open = false;
        ::shutdown(to, SHUT_WR);
        if (r < 0) return;
      }
    }
  }
}

void echo(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || !write_all(fd, buf, static_cast<size_t>(r))) return;
  }
}

}  // namespace

VsockHost::~VsockHost() { close_listener(); }

std::string VsockHost::bind(const std::string& path) {
  sockaddr_un addr{};
  if (!fill_addr(path, addr)) return os_error(ENAMETOOLONG);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return os_error(errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return os_error(e);
  }
  close_listener();
  fd_ = fd;
  path_ = path;
  return {};
}

void VsockHost::close_listener() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void VsockHost::accept_one() {
  int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;
  unsigned port = next_port_++;
  {
    std::lock_guard lock(mu_);
    open_.insert(c);
  }
  std::thread([this, c, port] { serve(c, port); }).detach();
}

void VsockHost::serve(int host_fd, unsigned local_port) {
  unsigned port = 0;
  if (read_connect(host_fd, port)) {
    int guest = connect_backend(port);
    if (guest >= 0) {
      std::lock_guard lock(mu_);
      open_.insert(guest);
    }
    if (guest != -1) {
      std::string ok = "OK " + std::to_string(local_port) + "\n";
      if (write_all(host_fd, ok.data(), ok.size())) {
        if (guest == -2) {
          echo(host_fd);
        } else {
          proxy(host_fd, guest);
        }
      }
      if (guest >= 0) {
        std::lock_guard lock(mu_);
        open_.erase(guest);
        ::close(guest);
      }
    }
  }
  std::lock_guard lock(mu_);
  open_.erase(host_fd);
  ::close(host_fd);
}

void VsockHost::reset_connections() {
  std::lock_guard lock(mu_);
  for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace fakefc
