#include "engine/priv/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/log.hpp"
#include "engine/core/make_dirs.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/sandbox_exec.hpp"
#include "engine/priv/wire.hpp"

namespace banger::priv {
namespace {

using Fd = UniqueFd;

}  // namespace

// chown/chmod a path that must not be a symlink, through an O_PATH|O_NOFOLLOW
// descriptor: whatever the path names after the open, the change lands on
// the object that was opened and checked.
void own_no_follow(const std::string& path, uid_t uid, gid_t gid, mode_t mode, mode_t want_type) {
  Fd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) throw Error::last("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("fstat", path);
  if ((st.st_mode & S_IFMT) != want_type) {
    throw Error("ELOOP", "refusing " + path + ": not the " + (want_type == S_IFDIR ? "directory" : "socket") +
                             " banger made (a symlink or another kind of file)");
  }
  if (::fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH) != 0) throw Error::last("chown", path);
  // fchmod does not work on O_PATH descriptors; /proc/self/fd/N names the
  // opened object itself, not the path.
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (::chmod(proc.c_str(), mode) != 0) throw Error::last("chmod", path);
}

void prepare_socket_dir(const std::string& dir, uid_t owner, gid_t group) {
  make_dirs(std::filesystem::path(dir).parent_path().string(), 0755);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw Error::last("mkdir", dir);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw Error::last("lstat", dir);
  if (!S_ISDIR(st.st_mode)) throw Error("ELOOP", "refusing " + dir + ": not a directory (a symlink?)");
  // A pre-existing directory owned by a third user could have been prepared
  // by them (with a socket of theirs inside): never adopt it.
  if (st.st_uid != 0 && st.st_uid != owner) {
    throw Error("EPERM", "refusing " + dir + ": owned by uid " + std::to_string(st.st_uid));
  }
  own_no_follow(dir, owner, group, 0700, S_IFDIR);
}

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {
  ::umask(077);
  std::string dir = std::filesystem::path(opts_.socket_path).parent_path().string();
  prepare_socket_dir(dir, opts_.owner_uid, opts_.owner_gid);
  struct stat st {};
  if (::lstat(opts_.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) throw Error("EEXIST", "refusing to replace " + opts_.socket_path + ": not a socket");
    ::unlink(opts_.socket_path.c_str());  // a previous helper's; connections to it are already dead
  }
  listen_fd_ = net_unix::bind(opts_.socket_path);
  own_no_follow(opts_.socket_path, opts_.owner_uid, opts_.owner_gid, 0600, S_IFSOCK);
  if (::listen(listen_fd_.get(), 64) != 0) throw Error::last("listen", opts_.socket_path);
}

Server::~Server() {
  if (listen_fd_) {
    listen_fd_.reset();
    ::unlink(opts_.socket_path.c_str());
  }
  // Connection threads hold no reference to the listener; wait for them so
  // none outlives the objects they use.
  while (active_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Server::run() {
  log::write(log::Level::info, "helper", "listening on " + opts_.socket_path + " for uid " + std::to_string(opts_.owner_uid));
  while (!stopping_ && !cancel::requested()) {
    reap_children();  // hypervisors it launched that have exited
    pollfd p{listen_fd_.get(), POLLIN, 0};
    try {
      // Wakes at once on SIGTERM/SIGINT; the bound keeps children reaped.
      if (cancel::poll(&p, 1, std::chrono::milliseconds(200)) <= 0) continue;
    } catch (const Error& e) {
      if (e.code() == "ECANCELED") break;
      throw;
    }
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) continue;
    const int fd = conn.get();
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != opts_.owner_uid)) {
      log::write(log::Level::warn, "helper", "refused a connection from uid " + std::to_string(cred.uid) + " (pid " +
                              std::to_string(cred.pid) + ")");
      try {
        net_unix::write_all(fd, encode_error("EACCES", "uid " + std::to_string(cred.uid) +
                                                          " may not use this root helper"),
                            "client");
      } catch (const Error&) {
      }
      continue;
    }
    if (active_.load() >= opts_.max_connections) {
      try {
        net_unix::write_all(fd, encode_error("EBUSY", "the root helper is busy; retry"), "client");
      } catch (const Error&) {
      }
      continue;
    }
    ++active_;
    std::thread([this, conn = std::move(conn), cred]() mutable {
      serve(conn.get(), cred.uid, cred.gid);
      conn.reset();  // before the count drops: ~Server waits on it
      --active_;
    }).detach();
  }
}

void Server::serve(int fd, uid_t uid, gid_t gid) {
  std::string buffer;
  for (;;) {
    std::string line;
    Fds fds;
    try {
      // An idle connection is closed after a while: it holds a thread.
      line = recv_line(fd, buffer, fds, std::chrono::steady_clock::now() + std::chrono::seconds(30));
    } catch (const Error&) {
      return;
    }
    std::string reply;
    UniqueFd passed;
    auto req = nlohmann::json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string()) {
      reply = encode_error("EINVAL", "malformed request: expected {\"op\": ..., \"params\": {...}}");
    } else {
      std::string op = req["op"].get<std::string>();
      nlohmann::json params = req.contains("params") ? req["params"] : nlohmann::json::object();
      try {
        Result r = execute(op, params, Caller{uid, gid}, std::move(fds));
        reply = encode_ok(r.value);
        passed = std::move(r.fd);
        log::write(log::Level::info, "helper", op + " for uid " + std::to_string(uid) + ": ok");
      } catch (const Error& e) {
        reply = encode_error(e.code(), e.what());
        log::write(log::Level::warn, "helper", op + " for uid " + std::to_string(uid) + ": " + e.code() + ": " + e.what());
      } catch (const std::exception& e) {
        reply = encode_error("EINTERNAL", e.what());
      }
    }
    try {
      send_line(fd, reply, passed ? std::vector<int>{passed.get()} : std::vector<int>{});
    } catch (const Error&) {
      return;
    }
  }
}

}  // namespace banger::priv
