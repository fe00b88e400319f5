#pragma once
// The root helper's listener. The socket is created so that it is never
// reachable by anyone but root and the owner, not even for an instant:
// the process umask is 077 before anything is created, the directory is
// made 0700 and handed to the owner through a descriptor, and the socket is
// bound under that umask, then chowned and chmodded through an
// O_PATH|O_NOFOLLOW descriptor (a path swapped for a symlink is refused).
// Every connection's peer is read with SO_PEERCRED; anyone but root and the
// owner is refused before a byte of their request is read.
#include <sys/types.h>

#include <atomic>
#include <string>

#include "engine/core/unique_fd.hpp"

namespace banger::priv {

struct ServerOptions {
  std::string socket_path;  // its directory is created or tightened as described above
  uid_t owner_uid = 0;
  gid_t owner_gid = 0;
  int max_connections = 32;  // concurrent requests; more are refused, not queued
};

class Server {
 public:
  explicit Server(ServerOptions opts);  // creates the directory and socket, listens
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts and serves until stop() (or SIGTERM/SIGINT through the cancel
  // flag). Each connection is served on a thread of its own.
  void run();
  void stop() { stopping_ = true; }

 private:
  void serve(int fd, uid_t uid, gid_t gid);
  ServerOptions opts_;
  UniqueFd listen_fd_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
};

// The directory of a socket path and its leaf; exposed for the tests of the
// "owned and private from birth" rule.
void prepare_socket_dir(const std::string& dir, uid_t owner, gid_t group);

// chown + chmod of `path`, which must be an object of `want_type` (S_IFDIR,
// S_IFSOCK) and not a symlink, through one O_PATH|O_NOFOLLOW descriptor:
// a path swapped for a symlink at any moment is refused (ELOOP), never
// followed. Exposed for the race test.
void own_no_follow(const std::string& path, uid_t uid, gid_t gid, mode_t mode, mode_t want_type);

}  // namespace banger::priv
