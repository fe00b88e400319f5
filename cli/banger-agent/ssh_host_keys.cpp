#include "ssh_host_keys.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <initializer_list>
#include <vector>

#include "dropbear_host_keys.hpp"
#include "engine/core/error.hpp"
#include "guest_system.hpp"
#include "run_program.hpp"

namespace banger::agent {
namespace {

using namespace std::chrono_literals;

constexpr const char* kSshDir = "/etc/ssh";

std::vector<std::string> host_key_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw Error::last("open", dir);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("ssh_host_", 0) == 0) names.push_back(name);
  }
  ::closedir(d);
  return names;
}

// Ed25519 and ECDSA, made at once; an old RSA (or DSA) key is removed, not
// remade: a 3072-bit RSA key took 8 to 34 s of TCG guest time here, the
// other two under a second.
constexpr const char* kKeyTypes[] = {"ed25519", "ecdsa"};

// The new keys are made in a directory beside the old ones and renamed over
// them, so an sshd starting meanwhile never finds /etc/ssh without host keys
// (it would exit for good).
void replace_host_keys(const std::string& keygen) {
  std::string fresh = std::string(kSshDir) + "/.banger-keys-XXXXXX";
  if (!::mkdtemp(fresh.data())) throw Error::last("mkdtemp", fresh);
  auto cleanup = [&] {
    for (const auto& name : host_key_files(fresh)) ::unlink((fresh + "/" + name).c_str());
    ::rmdir(fresh.c_str());
  };
  try {
    std::vector<std::vector<std::string>> jobs;
    for (const char* type : kKeyTypes) {
      jobs.push_back({keygen, "-q", "-t", type, "-N", "", "-f", fresh + "/ssh_host_" + type + "_key"});
    }
    std::vector<ProgramResult> made_by = run_programs(jobs, 120s);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (made_by[i].status != 0)
        throw Error("EIO", "ssh-keygen -t " + std::string(kKeyTypes[i]) + " (status " +
                               std::to_string(made_by[i].status) + "): " + made_by[i].output);
    }
    std::vector<std::string> made = host_key_files(fresh);
    // Nothing of the source's may stay: old keys of other types go.
    for (const auto& name : host_key_files(kSshDir)) {
      if (std::find(made.begin(), made.end(), name) != made.end()) continue;
      std::string path = std::string(kSshDir) + "/" + name;
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw Error::last("remove", path);
    }
    for (const auto& name : made) {
      std::string to = std::string(kSshDir) + "/" + name;
      if (::rename((fresh + "/" + name).c_str(), to.c_str()) != 0) throw Error::last("rename a new host key to", to);
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
}

// A live (not zombie) process whose name is sshd.
bool is_sshd(pid_t pid) {
  auto p = live_process(pid);
  return p && p->comm == "sshd";
}

pid_t sshd_pid() {
  for (const char* f : {"/run/sshd.pid", "/var/run/sshd.pid"}) {
    std::string line = read_first_line(f);
    if (line.empty()) continue;
    try {
      pid_t pid = static_cast<pid_t>(std::stol(line));
      if (is_sshd(pid)) return pid;
    } catch (const std::exception&) {
    }
  }
  return -1;
}

void restart_daemon(const std::string& sshd) {
  pid_t old = sshd_pid();
  if (old < 0) return;  // not running: the next start reads the new keys
  // SIGTERM stops the listener only; sessions it forked carry on.
  if (::kill(old, SIGTERM) != 0 && errno != ESRCH) throw Error::last("stop sshd", std::to_string(old));
  for (long long end = monotonic_ms() + 10000; is_sshd(old);) {
    if (monotonic_ms() > end) throw Error("ETIMEDOUT", "sshd (pid " + std::to_string(old) + ") did not stop");
    ::usleep(10 * 1000);
  }
  ::mkdir("/run/sshd", 0755);  // its privilege-separation directory
  ProgramResult r = run_program({sshd}, 30s);
  if (r.status != 0) throw Error("EIO", "start " + sshd + " (status " + std::to_string(r.status) + "): " + r.output);
  // The daemon writes its pid file once it listens.
  for (long long end = monotonic_ms() + 10000;;) {
    pid_t now = sshd_pid();
    if (now > 0 && now != old) return;
    if (monotonic_ms() > end) throw Error("ETIMEDOUT", "the restarted sshd did not write /run/sshd.pid");
    ::usleep(10 * 1000);
  }
}

// Debian and Ubuntu call the unit ssh.service; most others sshd.service.
std::string openssh_unit() { return systemd_unit_exists("ssh.service") ? "ssh.service" : "sshd.service"; }

bool regenerate_openssh_host_keys() {
  std::string sshd = find_program("sshd");
  if (sshd.empty()) return false;
  std::string keygen = find_program("ssh-keygen");
  if (keygen.empty()) throw Error("ENOENT", sshd + " is installed but ssh-keygen is not");
  replace_host_keys(keygen);
  if (systemd_running()) {
    std::string systemctl = find_program("systemctl");
    if (systemctl.empty()) throw Error("ENOENT", "systemd runs but systemctl is not installed");
    // Waits for the restart job: sshd serves the new keys when it returns.
    ProgramResult r = run_program({systemctl, "try-restart", openssh_unit()}, 60s);
    if (r.status != 0)
      throw Error("EIO", "systemctl try-restart " + openssh_unit() + " (status " + std::to_string(r.status) + "): " + r.output);
  } else {
    restart_daemon(sshd);
  }
  return true;
}

}  // namespace

std::string regenerate_ssh_host_keys() {
  bool openssh = regenerate_openssh_host_keys();
  bool dropbear = regenerate_dropbear_host_keys();
  return openssh || dropbear ? "regenerated" : "none";
}

}  // namespace banger::agent
