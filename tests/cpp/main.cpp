// The Catch2 main, and what a test left behind: ctest runs one test case
// per process, so a child of this process still running when the case is
// over is that case's leak. (A child that exited unreaped holds only its
// pid: a VM launched in-process and stopped over QMP is one; not counted.)
// It is named, killed and reaped, and the run fails, as luv's test harness
// fails on leaked handles. (Sockets and files live in test::TempDir, which
// removes them; the Lua runner checks taps, NAT rules and namespaces.)
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

struct Leak {
  pid_t pid;
  std::string cmdline;
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<Leak> children_left() {
  std::vector<Leak> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    std::string stat = slurp("/proc/" + std::string(e->d_name) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) continue;
    char state = stat[close + 2];
    long ppid = std::strtol(stat.c_str() + close + 4, nullptr, 10);
    if (ppid != ::getpid() || state == 'Z') continue;
    std::string cmd = slurp("/proc/" + std::string(e->d_name) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    out.push_back({static_cast<pid_t>(pid), cmd});
  }
  ::closedir(d);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int rc = Catch::Session().run(argc, argv);
  // A child killed at the end of a case may still be exiting (not yet a
  // zombie) for a moment: give it until the deadline to finish by itself.
  auto leaks = children_left();
  for (int waited_ms = 0; !leaks.empty() && waited_ms < 5000; waited_ms += 20) {
    ::usleep(20 * 1000);
    leaks = children_left();
  }
  for (const auto& l : leaks) {
    std::fprintf(stderr, "leaked child process %d (%s): still running\n", static_cast<int>(l.pid), l.cmdline.c_str());
    ::kill(l.pid, SIGKILL);
    ::waitpid(l.pid, nullptr, 0);
  }
  if (rc != 0) return rc;
  return leaks.empty() ? 0 : 1;
}
