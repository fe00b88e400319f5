#include "engine/vmm/firecracker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/vmm/http_unix.hpp"

namespace banger::vmm::firecracker {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

void check_private_dir(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw Error::last("firecracker: runtime dir", dir);
  if (!S_ISDIR(st.st_mode)) throw Error("EUNSAFE", "firecracker: runtime dir is not a directory (or is a symlink): " + dir);
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    throw Error("EUNSAFE", "firecracker: runtime dir must be owned by us with mode 0700: " + dir);
  }
}

void check_dir(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) throw Error::last("firecracker: VM dir", dir);
  if (!S_ISDIR(st.st_mode)) throw Error("EUNSAFE", "firecracker: VM dir is not a directory (or is a symlink): " + dir);
}

// A socket left by a firecracker that died is removed; one something still
// accepts on means another hypervisor runs for this VM.
void clear_stale_socket(const std::string& path) {
  if (path.empty()) return;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw Error::last("firecracker: stat", path);
  }
  if (!S_ISSOCK(st.st_mode)) throw Error("EEXIST", "firecracker: refusing to replace non-socket " + path);
  if (http::can_connect(path)) throw Error("EBUSY", "firecracker: " + path + " is in use by a running process");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw Error::last("firecracker: unlink", path);
}

void create_file(const std::string& path, bool truncate) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (truncate ? O_TRUNC : O_APPEND), 0600));
  if (!fd) throw Error::last("firecracker: create", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) throw Error("EUNSAFE", "firecracker: not a regular file: " + path);
}

void remove_socket(const std::string& path) {
  struct stat st {};
  if (!path.empty() && ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
}

std::string tail_lines(const std::string& path, size_t max_lines) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return {};
  std::string data(4096, '\0');
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  off_t from = size > 4096 ? size - 4096 : 0;
  ssize_t n = ::pread(fd.get(), data.data(), data.size(), from);
  fd.reset();
  data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  size_t start = data.size();
  for (size_t lines = 0; start > 0;) {
    size_t nl = data.rfind('\n', start - 1);
    if (nl == std::string::npos) {
      start = 0;
    } else if (++lines == max_lines) {
      start = nl + 1;
      break;
    } else {
      start = nl;
    }
  }
  return data.substr(start);
}

// A /proc/<pid> file, empty on any error (the process may go at any time).
std::string read_proc(pid_t pid, const char* name) noexcept {
  std::string raw;
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/" + name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return raw;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) raw.clear();
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  return raw;
}

std::string describe_exit(const process::ExitStatus& st) {
  return st.exited ? "exited with code " + std::to_string(st.code) : "killed by signal " + std::to_string(st.signal);
}

}  // namespace

void prepare_files(const VmSpec& spec, const Layout& l) {
  check_private_dir(spec.runtime_dir);
  check_dir(spec.vm_dir);
  clear_stale_socket(l.api_socket);
  clear_stale_socket(l.vsock_socket);
  create_file(l.log, false);
  create_file(l.metrics, true);
}

Spawned::Spawned(const VmSpec& spec, Layout l, const FirecrackerOptions& opts)
    : layout_(std::move(l)), api_(layout_.api_socket, opts.request_timeout) {
  argv_ = {spec.binary, "--api-sock", layout_.api_socket, "--id", spec.id};
  process::SpawnOptions so;
  so.argv = argv_;
  so.cwd = spec.vm_dir;
  so.umask = 077;  // the API and vsock sockets are private from the moment they exist
  so.new_session = true;
  so.in = process::Stdio::null();
  so.out = process::Stdio::file(layout_.console);
  so.err = process::Stdio::file(layout_.console);
  child_ = process::spawn(so);

  try {
    const auto deadline = clock::now() + opts.api_ready_timeout;
    for (;;) {
      if (auto st = child_.try_wait()) {
        throw Error("EHYPERVISOR", "firecracker " + describe_exit(*st) + " before its API socket was ready" + output_tail());
      }
      if (http::can_connect(layout_.api_socket)) break;
      if (clock::now() >= deadline) {
        throw Error("ETIMEDOUT", "firecracker: API socket " + layout_.api_socket + " not ready after " +
                                     std::to_string(opts.api_ready_timeout.count()) + " ms" + output_tail());
      }
      cancel::check();
      std::this_thread::sleep_for(2ms);
    }
    struct stat st {};
    if (::lstat(layout_.api_socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      throw Error("EUNSAFE", "firecracker: API socket " + layout_.api_socket + " is not a private socket of ours");
    }
  } catch (...) {
    cleanup();  // the destructor does not run for a constructor that throws
    throw;
  }
}

Spawned::~Spawned() { cleanup(); }

void Spawned::cleanup() noexcept {
  if (released_) return;
  released_ = true;
  try {
    child_.kill(SIGKILL);
    for (int i = 0; i < 2500 && !child_.try_wait(); ++i) std::this_thread::sleep_for(2ms);
  } catch (...) {
    // Nothing sensible to do in a destructor; the process was signalled.
  }
  remove_socket(layout_.api_socket);
  remove_socket(layout_.vsock_socket);
}

std::string Spawned::output_tail() const {
  std::string out;
  for (const std::string& path : {layout_.console, layout_.log}) {
    std::string t = tail_lines(path, 8);
    if (!t.empty()) out += "\n--- " + path + " ---\n" + t;
  }
  return out;
}

void Spawned::died(const std::string& during) {
  auto st = child_.try_wait();
  throw Error("EHYPERVISOR", "firecracker " + (st ? describe_exit(*st) : std::string("died")) + " during " +
                                 during + output_tail());
}

nlohmann::json Spawned::call(const Call& c) {
  const std::string what = c.method + " " + c.path;
  if (child_.try_wait()) died("configuration, before " + what);
  try {
    if (c.method == "PUT") {
      api_.put(c.path, c.body);
    } else if (c.method == "PATCH") {
      api_.patch(c.path, c.body);
    } else {
      return api_.get(c.path);
    }
    return nullptr;
  } catch (const Error& e) {
    if (e.code() == "EHYPERVISOR" || e.code() == "ECANCELED") throw;  // it answered, or the user stopped us
    // A dropped connection usually means the process is going away; give
    // it a moment to be reaped so the error can say so.
    for (int i = 0; i < 250; ++i) {
      if (child_.try_wait()) died(what);
      std::this_thread::sleep_for(2ms);
    }
    throw Error(e.code(), std::string(e.what()) + output_tail());
  }
}

Handles Spawned::handles(const VmSpec& spec) const {
  Handles h;
  h.driver = "firecracker";
  h.pid = child_.pid();
  h.cmdline = argv_;
  h.control_socket = layout_.api_socket;
  h.agent = spec.agent;
  if (h.agent.kind == AgentTransport::Kind::vsock_uds) h.agent.path = layout_.vsock_socket;
  return h;
}

Hypervisor::Hypervisor(const Handles& h) : pid_(h.pid) {
  auto same = [&] { return h.pid > 0 && !h.cmdline.empty() && process::cmdline(h.pid) == h.cmdline; };
  if (!same()) return;
  fd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, h.pid, 0)));
  if (fd_) ::fcntl(fd_.get(), F_SETFD, FD_CLOEXEC);
  // Checked again with the pidfd held: now it names this very process.
  if (fd_ && !same()) fd_.reset();
}

Hypervisor::~Hypervisor() = default;

bool Hypervisor::wait_exit(std::chrono::milliseconds limit) {
  if (!fd_) return true;
  const auto deadline = clock::now() + limit;
  for (;;) {
    // A pidfd turns readable when the process has exited (after its files
    // are closed), child of ours or not.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 0, 100)));
    if (n > 0) {
      reap_if_own_zombie(pid_);
      return true;
    }
    if (n < 0 && errno != EINTR) throw Error::last("poll pidfd", std::to_string(pid_));
    if (left <= 0) return false;
    cancel::check();
  }
}

void Hypervisor::kill() {
  if (fd_ && ::syscall(SYS_pidfd_send_signal, fd_.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH) {
    throw Error::last("kill", "firecracker pid " + std::to_string(pid_));
  }
}

void reap_if_own_zombie(pid_t pid) {
  if (pid <= 0) return;
  std::string stat = read_proc(pid, "stat");
  auto close_paren = stat.rfind(')');  // the command name may hold spaces and parens
  if (close_paren == std::string::npos) return;
  std::istringstream rest(stat.substr(close_paren + 1));
  char state = 0;
  long ppid = 0;
  rest >> state >> ppid;
  if (state == 'Z' && ppid == ::getpid()) ::waitpid(pid, nullptr, WNOHANG);
}

}  // namespace banger::vmm::firecracker
