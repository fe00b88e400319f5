#include "engine/priv/sandbox_exec.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::priv {
namespace {

std::mutex children_mu;
std::set<pid_t> children;  // launched and not yet reaped

[[noreturn]] void child_fail(int report_fd, int err) {
  ssize_t ignored = ::write(report_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

pid_t sandbox_exec(const SandboxExec& s) {
  if (s.exe_fd < 0 || s.argv.empty() || s.uid == 0 || s.gid == 0) {
    throw Error("EINVAL", "sandbox_exec: needs a checked binary, argv and a non-root identity");
  }
  // Everything the child needs is prepared here: after fork only
  // async-signal-safe calls are allowed (the helper is multi-threaded).
  std::vector<char*> argv;
  for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char path_env[] = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) throw Error::last("open", "/dev/null");
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw Error::last("pipe2");
  UniqueFd report_read(report[0]), report_write(report[1]);
  // Staged copies above every target number, so dup2 into 3.. never
  // overwrites a descriptor still to be placed.
  const int first_free = 3 + static_cast<int>(s.fds.size());
  const int stage_base = first_free + 16;
  std::vector<UniqueFd> staged;
  for (int fd : s.fds) {
    staged.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, stage_base));
    if (!staged.back()) throw Error::last("dup", "descriptor for the hypervisor");
  }
  UniqueFd exe(::fcntl(s.exe_fd, F_DUPFD_CLOEXEC, stage_base));
  UniqueFd out(::fcntl(s.output_fd, F_DUPFD_CLOEXEC, stage_base));
  UniqueFd in(::fcntl(devnull.get(), F_DUPFD_CLOEXEC, stage_base));
  UniqueFd rep(::fcntl(report_write.get(), F_DUPFD_CLOEXEC, stage_base));
  if (!exe || !out || !in || !rep) throw Error::last("dup", "sandbox descriptors");
  report_write.reset();

  pid_t pid = ::fork();
  if (pid < 0) throw Error::last("fork");
  if (pid == 0) {
    const int r = rep.get();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);  // the helper ignores it; exec keeps ignored signals ignored
    if (::setsid() < 0) child_fail(r, errno);
    ::umask(077);
    if (::chdir("/") != 0) child_fail(r, errno);
    if (::dup2(in.get(), 0) < 0 || ::dup2(out.get(), 1) < 0 || ::dup2(out.get(), 2) < 0) child_fail(r, errno);
    for (size_t i = 0; i < staged.size(); ++i) {
      if (::dup2(staged[i].get(), 3 + static_cast<int>(i)) < 0) child_fail(r, errno);
    }
    // Everything else the helper had open goes at exec (the staged copies,
    // the checked binary and the report pipe are already close-on-exec).
    if (::syscall(SYS_close_range, first_free, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) != 0) child_fail(r, errno);
    // Raw syscalls: glibc's wrappers would try to synchronise threads that
    // do not exist in this child.
    if (::syscall(SYS_setgroups, s.groups.size(), s.groups.data()) != 0) child_fail(r, errno);
    if (::syscall(SYS_setresgid, s.gid, s.gid, s.gid) != 0) child_fail(r, errno);
    if (::syscall(SYS_setresuid, s.uid, s.uid, s.uid) != 0) child_fail(r, errno);
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(r, errno);
    ::syscall(SYS_execveat, exe.get(), "", argv.data(), envp, AT_EMPTY_PATH);
    child_fail(r, errno);
  }
  rep.reset();
  int err = 0;
  ssize_t n;
  do {
    n = ::read(report_read.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    ::waitpid(pid, nullptr, 0);
    errno = err;
    throw Error::last("exec as uid " + std::to_string(s.uid), s.argv[0]);
  }
  std::lock_guard<std::mutex> g(children_mu);
  children.insert(pid);
  return pid;
}

void reap_children() {
  std::lock_guard<std::mutex> g(children_mu);
  for (auto it = children.begin(); it != children.end();) {
    pid_t r = ::waitpid(*it, nullptr, WNOHANG);
    if (r == *it || (r < 0 && errno == ECHILD)) {
      it = children.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace banger::priv
