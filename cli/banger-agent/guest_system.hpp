#pragma once
// What the agent reads about the guest it runs in: its processes and
// whether systemd runs it.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace banger::agent {

struct Process {
  pid_t pid = -1;
  pid_t ppid = -1;
  char state = '?';  // /proc/<pid>/stat's state: 'Z' for a zombie
  std::string comm;  // the kernel's short name ("sshd", "dropbear")
  std::vector<std::string> argv;
};

// Every process now (those that vanish while being read are left out).
std::vector<Process> processes();
// One process, or nullopt when it is gone or a zombie.
std::optional<Process> live_process(pid_t pid);

// The first line of a small file, "" when unreadable.
std::string read_first_line(const std::string& path);

// True when systemd is this guest's init (/run/systemd/system exists).
bool systemd_running();
// True when a unit file of that name is installed.
bool systemd_unit_exists(const std::string& unit);

long long monotonic_ms();

}  // namespace banger::agent
