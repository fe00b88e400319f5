#include "dropbear_host_keys.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "engine/core/error.hpp"
#include "guest_system.hpp"
#include "run_program.hpp"

namespace banger::agent {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDir = "/etc/dropbear";
constexpr const char* kKeyTypes[] = {"ed25519", "ecdsa"};

bool is_host_key(const std::string& name) {
  return name.rfind("dropbear_", 0) == 0 && name.size() > 9 && name.compare(name.size() - 9, 9, "_host_key") == 0;
}

std::vector<std::string> host_keys(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    if (is_host_key(e->d_name)) names.push_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

// Listeners: dropbear processes not forked by another dropbear (sessions are).
std::vector<Process> listeners() {
  std::vector<Process> all = processes(), out;
  for (const Process& p : all) {
    if (p.comm != "dropbear" || p.state == 'Z') continue;
    auto parent = std::find_if(all.begin(), all.end(), [&](const Process& q) { return q.pid == p.ppid; });
    if (parent == all.end() || parent->comm != "dropbear") out.push_back(p);
  }
  return out;
}

// A flag in the listener's command line, alone or in a cluster ("-FER").
bool has_flag(const Process& p, char flag) {
  for (size_t i = 1; i < p.argv.size(); ++i) {
    const std::string& a = p.argv[i];
    if (a.size() < 2 || a[0] != '-' || a[1] == '-') continue;
    bool letters = std::all_of(a.begin() + 1, a.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
    if (letters && a.find(flag) != std::string::npos) return true;
  }
  return false;
}

void make_keys(const std::string& dropbearkey) {
  ::mkdir(kDir, 0700);
  std::string fresh = std::string(kDir) + "/.banger-keys-XXXXXX";
  if (!::mkdtemp(fresh.data())) throw Error::last("mkdtemp", fresh);
  auto cleanup = [&] {
    for (const auto& name : host_keys(fresh)) ::unlink((fresh + "/" + name).c_str());
    ::rmdir(fresh.c_str());
  };
  try {
    std::vector<std::vector<std::string>> jobs;
    for (const char* type : kKeyTypes) {
      jobs.push_back({dropbearkey, "-t", type, "-f", fresh + "/dropbear_" + type + "_host_key"});
    }
    std::vector<ProgramResult> made = run_programs(jobs, 120s);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (made[i].status != 0)
        throw Error("EIO", "dropbearkey -t " + std::string(kKeyTypes[i]) + " (status " +
                               std::to_string(made[i].status) + "): " + made[i].output);
    }
    for (const auto& name : host_keys(fresh)) {
      std::string to = std::string(kDir) + "/" + name;
      if (::rename((fresh + "/" + name).c_str(), to.c_str()) != 0) throw Error::last("rename a new host key to", to);
    }
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
}

void stop(const Process& p) {
  if (::kill(p.pid, SIGTERM) != 0 && errno != ESRCH) throw Error::last("stop dropbear", std::to_string(p.pid));
  for (long long end = monotonic_ms() + 5000; live_process(p.pid);) {
    if (monotonic_ms() > end) {
      ::kill(p.pid, SIGKILL);
      end = monotonic_ms() + 5000;
    }
    ::usleep(10 * 1000);
  }
}

// A foreground listener (-F) belongs to a supervisor (an inittab respawn
// line, runit, s6) that starts it again; a daemonised one is started again
// here, from its own command line.
void restart(const std::vector<Process>& old, const std::string& dropbear) {
  for (const Process& p : old) stop(p);
  bool supervised = std::any_of(old.begin(), old.end(), [](const Process& p) { return has_flag(p, 'F'); });
  if (supervised) {
    for (long long end = monotonic_ms() + 5000; monotonic_ms() < end; ::usleep(20 * 1000)) {
      for (const Process& p : listeners()) {
        bool is_old = std::any_of(old.begin(), old.end(), [&](const Process& o) { return o.pid == p.pid; });
        if (!is_old) return;
      }
    }
  }
  for (const Process& p : old) start_detached(dropbear, p.argv);
}

}  // namespace

bool regenerate_dropbear_host_keys() {
  std::string dropbear = find_program("dropbear");
  if (dropbear.empty()) return false;
  std::string dropbearkey = find_program("dropbearkey");
  std::vector<Process> running = listeners();
  if (dropbearkey.empty()) {
    for (const Process& p : running) {
      if (!has_flag(p, 'R'))
        throw Error("ENOENT", "dropbear (pid " + std::to_string(p.pid) +
                                  ") runs without -R and dropbearkey is not installed: no new host key can be made");
    }
  }
  for (const auto& name : host_keys(kDir)) {
    std::string path = std::string(kDir) + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw Error::last("remove", path);
  }
  if (!dropbearkey.empty()) make_keys(dropbearkey);
  if (running.empty()) return true;
  if (systemd_running() && systemd_unit_exists("dropbear.service")) {
    ProgramResult r = run_program({find_program("systemctl"), "try-restart", "dropbear.service"}, 60s);
    if (r.status != 0) throw Error("EIO", "systemctl try-restart dropbear.service: " + r.output);
    return true;
  }
  restart(running, dropbear);
  return true;
}

}  // namespace banger::agent
