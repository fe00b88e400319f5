#include "session.hpp"

#include "banger_guest.hpp"
#include "guest_files.hpp"
#include "init.hpp"
#include "listeners.hpp"
#include "mount_disk.hpp"
#include "reidentify.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/write_all.hpp"
#include "engine/guest/requests.hpp"

namespace banger::agent {
using guest::FrameType;

namespace {

long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct Pipe {
  UniqueFd read_end, write_end;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error::last("pipe");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

std::string agent_version() { return "0.1.0"; }

void Session::send(FrameType t, std::uint32_t ch, std::string_view payload) {
  write_all(out_, guest::encode(t, ch, payload), "the host channel");
}

void Session::send_json(FrameType t, std::uint32_t ch, const nlohmann::json& j) {
  write_all(out_, guest::encode_json(t, ch, j), "the host channel");
}

void Session::send_error(std::uint32_t ch, const std::string& code, const std::string& msg) {
  send_json(FrameType::error, ch, {{"code", code}, {"message", msg}});
}

bool Session::pump_input(int timeout_ms) {
  std::vector<pollfd> fds = {{in_, POLLIN, 0}};
  if (child_out_) fds.push_back({child_out_.get(), POLLIN, 0});
  if (child_err_) fds.push_back({child_err_.get(), POLLIN, 0});
  size_t children = fds.size();
  conns_.add_pollfds(fds);
  if (conns_.connecting()) timeout_ms = std::min(timeout_ms, 50);
  int r = ::poll(fds.data(), fds.size(), timeout_ms);
  if (r < 0 && errno != EINTR) throw Error::last("poll");
  conns_.on_poll(fds.data() + children, r > 0 ? fds.size() - children : 0);
  char buf[guest::kDataChunk];
  for (size_t i = 1; i < children; ++i) {
    if (!fds[i].revents) continue;
    UniqueFd& fd = fds[i].fd == child_out_.get() ? child_out_ : child_err_;
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      send(&fd == &child_out_ ? FrameType::stdout_data : FrameType::stderr_data, exec_ch_,
           std::string_view(buf, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      fd.reset();
    }
  }
  if (fds[0].revents & POLLIN) {
    ssize_t n = ::read(in_, buf, sizeof buf);
    if (n > 0) {
      reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
      while (auto f = reader_.next()) handle(*f);
    } else if (n == 0) {
      return false;
    } else if (errno != EINTR && errno != EAGAIN) {
      return false;
    }
  } else if (fds[0].revents & (POLLHUP | POLLERR)) {
    return false;
  }
  return true;
}

void Session::run() {
  for (;;) {
    bool open = pump_input(child_ > 0 || exit_status_ >= 0 ? 50 : 1000);
    poll_exec();
    if (!open) {
      if (!shared_) {
        abort_exec();
        return;
      }
      // A serial port reports hang-up while no host is connected; wait for the next one.
      ::usleep(100 * 1000);
    }
  }
}

void Session::handle(const guest::Frame& f) {
  if (f.type == FrameType::hello) {
    nlohmann::json j;
    try {
      j = f.json();
    } catch (const Error& e) {
      // A torn frame: on a serial port, a host that disconnected mid-write
      // leaves a partial frame that swallows the start of the next host's
      // hello. Reported as EFRAME, which hosts ignore; the hello is repeated.
      return send_error(0, "EFRAME", e.what());
    }
    if (j.value("proto", 0) != guest::kProtocolMajor) {
      return send_error(0, "EPROTO", "agent speaks protocol " + std::to_string(guest::kProtocolMajor) +
                                         ", host sent " + std::to_string(j.value("proto", 0)));
    }
    std::string session = j.value("session", "");
    if (session != session_) {
      // A new host: whatever the previous one started is orphaned now.
      abort_exec();
      conns_.clear();
      put_fd_.reset();
      if (!put_tmp_.empty()) ::unlink(put_tmp_.c_str());
      put_tmp_.clear();
      session_ = session;
    }
    greeted_ = true;
    utsname u{};
    ::uname(&u);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return send_json(FrameType::hello_ok, 0,
                     {{"proto", guest::kProtocolMajor},
                      {"minor", guest::kProtocolMinor},
                      {"agent_version", agent_version()},
                      {"session", session_},
                      {"hostname", host},
                      {"kernel", u.release},
                      {"capabilities", {"exec", "signal", "put", "get", "poweroff", "reidentify", "mount", "listeners", "connect",
                        "list", "remove"}}});
  }
  if (!greeted_) return;  // nothing is served before the handshake
  try {
    if ((f.type == FrameType::data || f.type == FrameType::data_eof || f.type == FrameType::window ||
         f.type == FrameType::error) &&
        conns_.on_frame(f)) {
      return;
    }
    if (f.type == FrameType::error && put_fd_ && f.channel == put_ch_) {
      // The host gave up on its put (its data source failed): the target stays as it was.
      put_fd_.reset();
      ::unlink(put_tmp_.c_str());
      put_tmp_.clear();
      return;
    }
    switch (f.type) {
      case FrameType::connect: return conns_.connect(f);
      case FrameType::ping: return send(FrameType::pong, f.channel, f.payload);
      case FrameType::exec: return start_exec(f);
      case FrameType::stdin_data:
        if (f.channel == exec_ch_ && child_in_) write_all(child_in_.get(), f.payload, "the command's stdin");
        return;
      case FrameType::stdin_eof:
        if (f.channel == exec_ch_) child_in_.reset();
        return;
      case FrameType::signal:
        if (f.channel == exec_ch_ && child_ > 0) ::kill(-child_, f.json().value("signal", SIGTERM));
        return;
      case FrameType::put: {
        if (put_fd_) return send_error(f.channel, "EBUSY", "a put is already in progress");
        put_meta_ = f.json();
        put_path_ = put_meta_.value("path", "");
        if (put_path_.empty() || put_path_[0] != '/') return send_error(f.channel, "EINVAL", "put needs an absolute path");
        put_tmp_ = put_path_ + ".banger-tmp-" + std::to_string(::getpid());
        put_fd_.reset(::open(put_tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!put_fd_) {
          put_tmp_.clear();
          return send_error(f.channel, errno_name(errno), std::string("open: ") + std::strerror(errno) + ": " + put_path_);
        }
        put_ch_ = f.channel;
        return;
      }
      case FrameType::data:
        if (f.channel == put_ch_ && put_fd_) write_all(put_fd_.get(), f.payload, put_tmp_);
        return;
      case FrameType::data_eof:
        if (f.channel == put_ch_ && put_fd_) finish_put(f.channel);
        return;
      case FrameType::get: return do_get(f);
      case FrameType::reidentify: return do_reidentify(f);
      case FrameType::mount: {
        guest::MountRequest m = guest::parse_mount(f.json());
        std::string dev = mount_by_serial(m);
        return send_json(FrameType::ok, f.channel, {{"device", dev}});
      }
      case FrameType::listeners: return send_json(FrameType::ok, f.channel, guest::to_json(list_listeners()));
      case FrameType::list:
        return send_json(FrameType::ok, f.channel, guest::to_json(list_path(f.json().value("path", ""))));
      case FrameType::remove: {
        nlohmann::json j = f.json();
        remove_path(j.value("path", ""), j.value("recursive", false));
        return send_json(FrameType::ok, f.channel, nlohmann::json::object());
      }
      case FrameType::poweroff: {
        // Only inside a banger guest: an agent run on a host (tests, a
        // mistake) must never take that machine down.
        if (!in_banger_guest()) return send_error(f.channel, "EPERM", "not a banger guest (no banger.* kernel arguments); refusing to power off");
        send_json(FrameType::ok, f.channel, nlohmann::json::object());
        ::sync();
        if (::getpid() == 1) ::reboot(RB_POWER_OFF);
        // Started by banger-init: ask that PID 1 the way it understands.
        if (const char* pid1 = std::getenv(kPid1Env)) {
          if (std::strcmp(pid1, "banger") == 0 && ::kill(1, SIGUSR2) == 0) return;
          if (std::strcmp(pid1, "systemd") == 0 && ::kill(1, SIGRTMIN + 4) == 0) return;
        }
        pid_t p = ::fork();
        if (p == 0) {
          ::execl("/sbin/poweroff", "poweroff", static_cast<char*>(nullptr));
          ::_exit(127);
        }
        return;
      }
      default: return;
    }
  } catch (const Error& e) {
    send_error(f.channel, e.code(), e.what());
  }
}

void Session::do_reidentify(const guest::Frame& f) {
  // Validated first, so a malformed request is reported as such anywhere.
  guest::ReidentifyRequest r = guest::parse_reidentify(f.json());
  if (!in_banger_guest()) {
    return send_error(f.channel, "EPERM",
                      "not a banger guest (no banger.* kernel arguments); refusing to reidentify this machine");
  }
  try {
    send_json(FrameType::ok, f.channel, reidentify(r));
  } catch (const StepError& e) {
    send_json(FrameType::error, f.channel, {{"code", e.code()}, {"message", e.what()}, {"step", e.step()}});
  }
}

void Session::start_exec(const guest::Frame& f) {
  if (child_ > 0 || exit_status_ >= 0) return send_error(f.channel, "EBUSY", "a command is already running");
  nlohmann::json j = f.json();
  std::vector<std::string> argv = j.value("argv", std::vector<std::string>{});
  if (argv.empty()) return send_error(f.channel, "EINVAL", "exec needs argv");
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                                  "TERM=dumb", "USER=root", "LOGNAME=root"};
  for (const auto& e : j.value("env", std::vector<std::string>{})) env.push_back(e);
  std::string cwd = j.value("cwd", "/root");

  Pipe in = make_pipe(), out = make_pipe(), err = make_pipe(), status_pipe = make_pipe();
  pid_t pid = ::fork();
  if (pid < 0) throw Error::last("fork");
  if (pid == 0) {
    ::setsid();
    ::dup2(in.read_end.get(), 0);
    ::dup2(out.write_end.get(), 1);
    ::dup2(err.write_end.get(), 2);
    for (int s = 1; s < 32; ++s) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::chdir(cwd.c_str()) != 0 && ::chdir("/") != 0) ::_exit(126);
    std::vector<char*> av, ev;
    for (auto& a : argv) av.push_back(a.data());
    av.push_back(nullptr);
    for (auto& e : env) ev.push_back(e.data());
    ev.push_back(nullptr);
    ::execvpe(av[0], av.data(), ev.data());
    int e = errno;
    ssize_t ignored = ::write(status_pipe.write_end.get(), &e, sizeof e);
    (void)ignored;
    ::_exit(127);
  }
  // Our copies of the child's ends go now, so a read sees EOF once the child is done with them.
  in.read_end.reset();
  out.write_end.reset();
  err.write_end.reset();
  status_pipe.write_end.reset();
  int exec_errno = 0;
  ssize_t n = ::read(status_pipe.read_end.get(), &exec_errno, sizeof exec_errno);  // EOF on a successful exec
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    ::waitpid(pid, nullptr, 0);
    return send_error(f.channel, errno_name(exec_errno),
                      std::string("exec: ") + std::strerror(exec_errno) + ": " + argv[0]);
  }
  child_ = pid;
  exec_ch_ = f.channel;
  child_in_ = std::move(in.write_end);
  child_out_ = std::move(out.read_end);
  child_err_ = std::move(err.read_end);
  exit_status_ = -1;
  if (!j.value("stdin", false)) child_in_.reset();
  send_json(FrameType::started, f.channel, {{"pid", pid}});
}

void Session::poll_exec() {
  if (child_ > 0) {
    int st = 0;
    if (::waitpid(child_, &st, WNOHANG) == child_) {
      exit_status_ = st;
      exited_at_ms_ = now_ms();
      child_ = -1;
      child_in_.reset();
    }
  }
  if (exit_status_ < 0) return;
  // Report the exit once the output is drained, or shortly after the exit
  // if a background process still holds the pipes open.
  bool drained = !child_out_ && !child_err_;
  if (!drained && now_ms() - exited_at_ms_ < 200) return;
  child_out_.reset();
  child_err_.reset();
  nlohmann::json body = WIFEXITED(exit_status_) ? nlohmann::json{{"code", WEXITSTATUS(exit_status_)}}
                                                : nlohmann::json{{"code", 128 + WTERMSIG(exit_status_)},
                                                                 {"signal", WTERMSIG(exit_status_)}};
  exit_status_ = -1;
  send_json(FrameType::exit, exec_ch_, body);
}

void Session::abort_exec() {
  if (child_ > 0) {
    ::kill(-child_, SIGKILL);
    ::waitpid(child_, nullptr, 0);
  }
  child_ = -1;
  exit_status_ = -1;
  child_in_.reset();
  child_out_.reset();
  child_err_.reset();
}

void Session::finish_put(std::uint32_t ch) {
  UniqueFd fd = std::move(put_fd_);
  auto mode = static_cast<mode_t>(put_meta_.value("mode", 0644));
  int uid = put_meta_.value("uid", 0), gid = put_meta_.value("gid", 0);
  bool ok = ::fchown(fd.get(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) == 0 &&
            ::fchmod(fd.get(), mode) == 0 && ::fsync(fd.get()) == 0;
  int e = errno;
  fd.reset();
  if (ok && ::rename(put_tmp_.c_str(), put_path_.c_str()) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    ::unlink(put_tmp_.c_str());
    put_tmp_.clear();
    return send_error(ch, errno_name(e), std::string("put: ") + std::strerror(e) + ": " + put_path_);
  }
  put_tmp_.clear();
  send_json(FrameType::ok, ch, nlohmann::json::object());
}

void Session::do_get(const guest::Frame& f) {
  nlohmann::json j = f.json();
  std::string path = j.value("path", "");
  // An optional cap (protocol 1.3): a host that wants at most N bytes asks
  // for N + 1 and sees whether there were more; /dev/zero ends too.
  auto left = j.value("limit", std::numeric_limits<std::uint64_t>::max());
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return send_error(f.channel, errno_name(errno), std::string("open: ") + std::strerror(errno) + ": " + path);
  char buf[guest::kDataChunk];
  while (left > 0) {
    ssize_t n = ::read(fd.get(), buf, static_cast<size_t>(std::min<std::uint64_t>(sizeof buf, left)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    left -= static_cast<std::uint64_t>(n);
    send(FrameType::data, f.channel, std::string_view(buf, static_cast<size_t>(n)));
  }
  fd.reset();
  send(FrameType::data_eof, f.channel, {});
}

}  // namespace banger::agent
