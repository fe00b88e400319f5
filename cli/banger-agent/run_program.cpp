#include "run_program.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core/error.hpp"

namespace banger::agent {
namespace {

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

long long monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
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

ProgramResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw Error::last("pipe");
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    throw Error::sys(e, "fork", argv[0]);
  }
  if (pid == 0) {
    ::setsid();
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
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
  ::close(out[1]);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  ProgramResult r;
  const long long deadline = monotonic_ms() + timeout.count();
  // Until the program exits (a daemon it forks may keep the pipe open).
  int st = 0;
  bool eof = false;
  for (;;) {
    pollfd p{out[0], POLLIN, 0};
    if (eof) ::usleep(5000);
    else ::poll(&p, 1, 20);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof buf)) > 0) {
      if (r.output.size() < 16384) r.output.append(buf, static_cast<size_t>(n));
    }
    if (n == 0) eof = true;
    pid_t done = ::waitpid(pid, &st, WNOHANG);
    if (done == pid) break;
    if (monotonic_ms() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      ::close(out[0]);
      throw Error("ETIMEDOUT", argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms");
    }
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) {
    if (r.output.size() < 16384) r.output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  while (!r.output.empty() && (r.output.back() == '\n' || r.output.back() == ' ')) r.output.pop_back();
  return r;
}

}  // namespace banger::agent
