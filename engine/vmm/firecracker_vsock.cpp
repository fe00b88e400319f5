#include "engine/vmm/firecracker_vsock.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::vmm::firecracker {
namespace {

using clock = std::chrono::steady_clock;

// Waits for `fd` to be readable, in slices so Ctrl-C is noticed.
void wait_readable(int fd, clock::time_point deadline, const std::string& what) {
  for (;;) {
    cancel::check();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) throw Error("ETIMEDOUT", what + ": no answer");
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) throw Error::last("vsock: poll");
  }
}

}  // namespace

int vsock_connect(const std::string& uds_path, std::uint32_t port, std::chrono::milliseconds timeout) {
  const std::string what = "vsock " + uds_path + " port " + std::to_string(port);
  sockaddr_un addr{};
  if (uds_path.size() >= sizeof(addr.sun_path)) throw Error("ENAMETOOLONG", what + ": socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, uds_path.c_str(), uds_path.size() + 1);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) throw Error::last("vsock: socket");
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    throw Error(err == ENOENT ? "ECONNREFUSED" : errno_name(err), what + ": connect: " + std::strerror(err));
  }
  std::string req = "CONNECT " + std::to_string(port) + "\n";
  if (::send(s.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    throw Error::last("vsock: send", what);
  }
  // Byte by byte: whatever the guest sends right after "OK" belongs to the caller.
  const auto deadline = clock::now() + timeout;
  std::string line;
  while (line.size() < 32) {
    wait_readable(s.get(), deadline, what);
    char c = 0;
    ssize_t r = ::read(s.get(), &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 || (r < 0 && errno == ECONNRESET)) {
      throw Error("ECONNRESET", what + ": connection closed (nothing listens on that port in the guest)");
    }
    if (r < 0) throw Error::last("vsock: read", what);
    if (c == '\n') break;
    line.push_back(c);
  }
  bool ok = line.size() > 3 && line.compare(0, 3, "OK ") == 0;
  for (size_t i = 3; ok && i < line.size(); ++i) ok = std::isdigit(static_cast<unsigned char>(line[i])) != 0;
  if (!ok) throw Error("EPROTO", what + ": unexpected answer '" + line + "'");
  return s.release();
}

}  // namespace banger::vmm::firecracker
