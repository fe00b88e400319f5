#pragma once
// The host side of Firecracker's vsock device: a Unix socket at uds_path.
// A host client connects, writes "CONNECT <port>\n" and, when the "guest"
// accepts, reads "OK <host port>\n"; then bytes flow both ways. The guest
// end here is the Unix socket named by FAKE_FC_VSOCK_BACKEND ("{port}" in it
// is replaced by the port), or an echo when that is unset. If the backend
// does not accept, the host connection is closed, as Firecracker does when
// nothing listens in the guest.
#include <atomic>
#include <mutex>
#include <set>
#include <string>

namespace fakefc {

class VsockHost {
 public:
  ~VsockHost();
  // Binds and listens on `path` under the process umask. Returns "" or the
  // OS error ("Address in use (os error 98)") when the path exists.
  std::string bind(const std::string& path);
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void close_listener();
  // Accepts one pending connection and serves it on its own thread.
  void accept_one();
  // Snapshots reset open connections (guest listeners survive).
  void reset_connections();

 private:
  void serve(int host_fd, unsigned local_port);
  int fd_ = -1;
  std::string path_;
  std::atomic<unsigned> next_port_{(1u << 30)};
  std::mutex mu_;
  std::set<int> open_;
};

}  // namespace fakefc
