#include "run_program.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "guest_system.hpp"

namespace banger::agent {
namespace {

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Running {
  pid_t pid = -1;
  UniqueFd out;  // stdout and stderr
  bool eof = false, exited = false;
  int status = 0;
  ProgramResult result;
};

Running start(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error::last("pipe");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid < 0) throw Error::last("fork", argv[0]);
  if (pid == 0) {
    ::setsid();
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 0);
    ::dup2(write_end.get(), 1);
    ::dup2(write_end.get(), 2);
    for (int s = 1; s < 32; ++s) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    std::string path = std::string("PATH=") + kPath;
    char* env[] = {path.data(), const_cast<char*>("HOME=/root"), const_cast<char*>("LANG=C"), nullptr};
    ::execve(av[0], av.data(), env);
    std::string msg = std::string("exec ") + argv[0] + ": " + std::strerror(errno);
    ssize_t ignored = ::write(2, msg.data(), msg.size());
    (void)ignored;
    ::_exit(127);
  }
  write_end.reset();
  ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
  Running r;
  r.pid = pid;
  r.out = std::move(read_end);
  return r;
}

void drain(Running& r) {
  char buf[4096];
  ssize_t n;
  while ((n = ::read(r.out.get(), buf, sizeof buf)) > 0) {
    if (r.result.output.size() < 16384) r.result.output.append(buf, static_cast<size_t>(n));
  }
  if (n == 0) r.eof = true;
}

}  // namespace

std::string find_program(const std::string& name) {
  std::string path = kPath;
  for (size_t start = 0; start <= path.size();) {
    size_t colon = path.find(':', start);
    std::string candidate = path.substr(start, colon - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

std::vector<ProgramResult> run_programs(const std::vector<std::vector<std::string>>& argvs,
                                        std::chrono::milliseconds timeout) {
  std::vector<Running> running;
  auto kill_all = [&] {
    for (auto& r : running) {
      if (!r.exited) {
        ::kill(-r.pid, SIGKILL);
        ::waitpid(r.pid, nullptr, 0);
      }
      r.out.reset();
    }
  };
  try {
    for (const auto& argv : argvs) running.push_back(start(argv));
  } catch (...) {
    kill_all();
    throw;
  }
  const long long deadline = monotonic_ms() + timeout.count();
  // Until each program exits (a daemon it forks may keep its pipe open).
  for (;;) {
    std::vector<pollfd> fds;
    for (auto& r : running) {
      if (!r.eof) fds.push_back({r.out.get(), POLLIN, 0});
    }
    if (fds.empty()) ::usleep(5000);
    else ::poll(fds.data(), fds.size(), 20);
    bool all = true;
    for (auto& r : running) {
      drain(r);
      if (!r.exited && ::waitpid(r.pid, &r.status, WNOHANG) == r.pid) r.exited = true;
      all = all && r.exited;
    }
    if (all) break;
    if (monotonic_ms() > deadline) {
      std::string names;
      for (size_t i = 0; i < running.size(); ++i) {
        if (!running[i].exited) names += (names.empty() ? "" : ", ") + argvs[i][0];
      }
      kill_all();
      throw Error("ETIMEDOUT", names + " did not finish within " + std::to_string(timeout.count()) + " ms");
    }
  }
  std::vector<ProgramResult> results;
  for (auto& r : running) {
    drain(r);
    r.out.reset();
    r.result.status = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
    std::string& o = r.result.output;
    while (!o.empty() && (o.back() == '\n' || o.back() == ' ')) o.pop_back();
    results.push_back(std::move(r.result));
  }
  return results;
}

void start_detached(const std::string& path, const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) throw Error::last("fork", path);
  if (pid == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3 && null >= 0; ++fd) ::dup2(null, fd);
    for (int s = 1; s < 32; ++s) ::signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    std::string env_path = std::string("PATH=") + kPath;
    char* env[] = {env_path.data(), const_cast<char*>("HOME=/root"), const_cast<char*>("LANG=C"), nullptr};
    ::execve(path.c_str(), av.data(), env);
    ::_exit(127);
  }
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

ProgramResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  return run_programs({argv}, timeout).front();
}

}  // namespace banger::agent
