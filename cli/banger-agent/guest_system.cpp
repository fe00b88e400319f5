#include "guest_system.hpp"

#include "engine/core/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>

namespace banger::agent {
namespace {

// No iostreams: in a static binary they bring in the whole locale machinery.
std::string read_small(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, static_cast<size_t>(n));
  return text;
}

std::optional<Process> read_process(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  std::string stat = read_small(dir + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
  size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > stat.size()) return std::nullopt;
  Process p;
  p.pid = pid;
  p.comm = stat.substr(open + 1, close - open - 1);
  p.state = stat[close + 2];
  p.ppid = static_cast<pid_t>(std::strtol(stat.c_str() + close + 4, nullptr, 10));
  std::string cmdline = read_small(dir + "/cmdline");
  for (size_t start = 0; start < cmdline.size();) {
    size_t nul = cmdline.find('\0', start);
    if (nul == std::string::npos) nul = cmdline.size();
    p.argv.push_back(cmdline.substr(start, nul - start));
    start = nul + 1;
  }
  return p;
}

}  // namespace

std::vector<Process> processes() {
  std::vector<Process> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    if (auto p = read_process(static_cast<pid_t>(pid))) out.push_back(std::move(*p));
  }
  ::closedir(d);
  return out;
}

std::optional<Process> live_process(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto p = read_process(pid);
  if (!p || p->state == 'Z') return std::nullopt;
  return p;
}

std::string read_first_line(const std::string& path) {
  std::string text = read_small(path);
  return text.substr(0, text.find('\n'));
}

bool systemd_running() {
  struct stat st {};
  return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

bool systemd_unit_exists(const std::string& unit) {
  for (const char* dir : {"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}) {
    if (::access((std::string(dir) + "/" + unit).c_str(), F_OK) == 0) return true;
  }
  return false;
}

long long monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

}  // namespace banger::agent
