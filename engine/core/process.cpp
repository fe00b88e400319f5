#include "engine/core/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <mutex>
#include <utility>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/host_tools.hpp"
#include "engine/core/unique_fd.hpp"

extern char** environ;

namespace banger::process {
namespace {

std::mutex umask_mutex;

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

class Attr {
 public:
  Attr() { posix_spawnattr_init(&a_); }
  ~Attr() { posix_spawnattr_destroy(&a_); }
  posix_spawnattr_t* get() { return &a_; }

 private:
  posix_spawnattr_t a_;
};

struct Pipe {
  UniqueFd read_end, write_end;
  void open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw Error::last("pipe");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
};

void setup_stdio(FileActions& fa, const Stdio& s, int target, Pipe& p, bool child_reads) {
  switch (s.kind) {
    case Stdio::Kind::inherit:
      return;
    case Stdio::Kind::null:
      posix_spawn_file_actions_addopen(fa.get(), target, "/dev/null", child_reads ? O_RDONLY : O_WRONLY, 0);
      return;
    case Stdio::Kind::pipe:
      p.open();
      posix_spawn_file_actions_adddup2(fa.get(), (child_reads ? p.read_end : p.write_end).get(), target);
      return;
    case Stdio::Kind::file_truncate:
    case Stdio::Kind::file_append: {
      int flags = O_WRONLY | O_CREAT | O_NOFOLLOW |
                  (s.kind == Stdio::Kind::file_append ? O_APPEND : O_TRUNC);
      posix_spawn_file_actions_addopen(fa.get(), target, s.path.c_str(), flags, 0600);
      return;
    }
  }
}

// Writing to a child that exited must be an EPIPE error, not a fatal signal.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

ExitStatus decode(int wstatus) {
  ExitStatus st;
  if (WIFEXITED(wstatus)) {
    st.exited = true;
    st.code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    st.signal = WTERMSIG(wstatus);
  }
  return st;
}

}  // namespace

Child::Child(pid_t pid, UniqueFd in, UniqueFd out, UniqueFd err)
    : pid_(pid), in_(std::move(in)), out_(std::move(out)), err_(std::move(err)) {
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd_) ::fcntl(pidfd_.get(), F_SETFD, FD_CLOEXEC);
}

Child::Child(Child&& o) noexcept { *this = std::move(o); }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    pid_ = std::exchange(o.pid_, -1);
    pidfd_ = std::move(o.pidfd_);
    in_ = std::move(o.in_);
    out_ = std::move(o.out_);
    err_ = std::move(o.err_);
    status_ = std::exchange(o.status_, std::nullopt);
  }
  return *this;
}

void Child::close_stdin() { in_.reset(); }

void Child::close_fd(int fd) {
  if (fd < 0) return;
  for (UniqueFd* mine : {&in_, &out_, &err_}) {
    if (mine->get() == fd) mine->reset();
  }
}

std::optional<ExitStatus> Child::try_wait() {
  if (status_ || pid_ < 0) return status_;
  int ws = 0;
  pid_t r = ::waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) status_ = decode(ws);
  if (r < 0 && errno != EINTR) throw Error::last("waitpid", std::to_string(pid_));
  return status_;
}

std::optional<ExitStatus> Child::wait(std::optional<std::chrono::milliseconds> timeout) {
  using clock = std::chrono::steady_clock;
  const auto deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
  for (;;) {
    if (auto st = try_wait()) return st;
    cancel::check();
    auto now = clock::now();
    if (now >= deadline) return std::nullopt;
    // Wake at least every 100 ms to notice Ctrl-C.
    auto slice = std::min<clock::duration>(deadline - now, std::chrono::milliseconds(100));
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(slice).count()) + 1;
    if (pidfd_) {
      pollfd p{pidfd_.get(), POLLIN, 0};
      ::poll(&p, 1, ms);
    } else {
      ::usleep(static_cast<useconds_t>(std::min(ms, 20)) * 1000);
    }
  }
}

void Child::kill(int sig) {
  if (pid_ < 0 || status_) return;
  if (pidfd_) {
    // pidfd_send_signal cannot hit a recycled pid.
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0) == 0 || errno == ESRCH) return;
  }
  if (::kill(pid_, sig) != 0 && errno != ESRCH) throw Error::last("kill", std::to_string(pid_));
}

Child spawn(const SpawnOptions& opts) {
  if (opts.argv.empty()) throw Error("EINVAL", "spawn: empty argv");
  // Looked up here rather than by posix_spawnp, so the sbin directories are
  // searched too and a missing program is named with its package.
  const std::string program = host_tools::find(opts.argv[0]);
  if (program.empty()) throw host_tools::not_found(opts.argv[0]);
  FileActions fa;
  Attr attr;
  Pipe pin, pout, perr;
  setup_stdio(fa, opts.in, 0, pin, true);
  setup_stdio(fa, opts.out, 1, pout, false);
  setup_stdio(fa, opts.err, 2, perr, false);
  // Descriptors to pass go first to high numbers (so moving one to 3+i can
  // never clobber another still to be moved), then to 3, 4, ...; dup2 onto
  // a different number clears close-on-exec.
  std::vector<UniqueFd> staged;
  for (size_t i = 0; i < opts.pass_fds.size(); ++i) {
    staged.emplace_back(::fcntl(opts.pass_fds[i], F_DUPFD_CLOEXEC, 64));
    if (!staged.back()) throw Error::last("dup", "descriptor to pass");
    posix_spawn_file_actions_adddup2(fa.get(), staged.back().get(), 3 + static_cast<int>(i));
  }
  // Nothing else crosses into the child, whatever a library opened without CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(fa.get(), 3 + static_cast<int>(opts.pass_fds.size()));
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(fa.get(), opts.cwd.c_str());

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (opts.new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(attr.get(), flags);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(attr.get(), &none);
  posix_spawnattr_setsigdefault(attr.get(), &all);

  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char** env = environ;
  if (opts.env) {
    for (const auto& e : *opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    env = envp.data();
  }

  pid_t pid = -1;
  int rc;
  {
    std::unique_lock lock(umask_mutex, std::defer_lock);
    mode_t saved = 0;
    if (opts.umask) {
      lock.lock();
      saved = ::umask(0);
      ::umask(static_cast<mode_t>(saved | *opts.umask));
    }
    rc = ::posix_spawn(&pid, program.c_str(), fa.get(), attr.get(), argv.data(), env);
    if (opts.umask) ::umask(saved);
  }
  if (rc != 0) throw Error::sys(rc, "spawn", opts.argv[0]);
  // The child's ends are closed by the Pipe destructors.
  return Child(pid, std::move(pin.write_end), std::move(pout.read_end), std::move(perr.read_end));
}

RunResult run(SpawnOptions opts, std::string_view input, std::optional<std::chrono::milliseconds> timeout) {
  if (opts.in.kind == Stdio::Kind::inherit) opts.in = input.empty() ? Stdio::null() : Stdio::pipe();
  if (opts.out.kind == Stdio::Kind::inherit) opts.out = Stdio::pipe();
  if (opts.err.kind == Stdio::Kind::inherit) opts.err = Stdio::pipe();
  Child child = spawn(opts);
  RunResult res;

  using clock = std::chrono::steady_clock;
  const auto deadline = timeout ? clock::now() + *timeout : clock::time_point::max();
  auto stop = [&](const Error& why) -> Error {
    child.kill(SIGTERM);
    if (!child.wait(std::chrono::milliseconds(2000))) {
      child.kill(SIGKILL);
      child.wait();
    }
    return why;
  };

  ignore_sigpipe();
  if (child.stdin_fd() >= 0) ::fcntl(child.stdin_fd(), F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (child.stdin_fd() >= 0 && input.empty()) child.close_stdin();
  std::array<char, 65536> buf;
  for (;;) {
    std::vector<pollfd> fds;
    if (child.stdout_fd() >= 0) fds.push_back({child.stdout_fd(), POLLIN, 0});
    if (child.stderr_fd() >= 0) fds.push_back({child.stderr_fd(), POLLIN, 0});
    if (child.stdin_fd() >= 0) fds.push_back({child.stdin_fd(), POLLOUT, 0});
    if (fds.empty()) break;
    if (cancel::requested()) throw stop(Error("ECANCELED", "interrupted"));
    if (clock::now() >= deadline) throw stop(Error("ETIMEDOUT", "timed out: " + opts.argv[0]));
    int n = ::poll(fds.data(), fds.size(), 100);
    if (n < 0 && errno != EINTR) throw stop(Error::last("poll"));
    if (n <= 0) continue;
    for (const pollfd& p : fds) {
      if (!p.revents) continue;
      if (p.fd == child.stdin_fd()) {
        // SIGPIPE is ignored process-wide (ignore_sigpipe), so an early
        // exit of the child shows up here as EPIPE.
        ssize_t w = ::write(p.fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) child.close_stdin();
        continue;
      }
      ssize_t r = ::read(p.fd, buf.data(), buf.size());
      std::string& sink = p.fd == child.stdout_fd() ? res.out : res.err;
      if (r > 0) {
        sink.append(buf.data(), static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        child.close_fd(p.fd);
      }
    }
  }
  auto remaining = timeout ? std::optional(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::max<clock::duration>(deadline - clock::now(), clock::duration::zero())))
                           : std::nullopt;
  auto st = child.wait(remaining);
  if (!st) throw stop(Error("ETIMEDOUT", "timed out: " + opts.argv[0]));
  res.status = *st;
  return res;
}

std::vector<std::string> cmdline(pid_t pid) {
  // Plain read(2): a process exiting while we read makes the read fail
  // (ESRCH), which means "gone", not an error worth an exception.
  std::string path = "/proc/" + std::to_string(pid) + "/cmdline";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string raw;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      raw.clear();
      break;
    }
    if (n == 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\0') {
      out.push_back(raw.substr(start, i - start));
      start = i + 1;
    }
  }
  if (start < raw.size()) out.push_back(raw.substr(start));
  return out;
}

}  // namespace banger::process
