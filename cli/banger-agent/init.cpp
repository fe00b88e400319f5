#include "init.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <string>

namespace banger::agent {
namespace {

void say(const char* message, const char* subject = "") {
  std::fprintf(stderr, "banger-init: %s%s\n", message, subject);
}

bool mounted(const char* dir) {
  // A mount point's device differs from its parent's (or it is the root).
  struct stat a {}, b {};
  std::string parent = std::string(dir) + "/..";
  return ::stat(dir, &a) == 0 && ::stat(parent.c_str(), &b) == 0 && a.st_dev != b.st_dev;
}

void mount_api(const char* source, const char* dir, const char* type, unsigned long flags, const char* data) {
  ::mkdir(dir, 0755);
  if (mounted(dir)) return;
  if (::mount(source, dir, type, flags, data) != 0) {
    std::fprintf(stderr, "banger-init: mount %s on %s: %s\n", type, dir, std::strerror(errno));
  }
}

const char* find_systemd() {
  for (const char* p : {"/lib/systemd/systemd", "/usr/lib/systemd/systemd"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return nullptr;
}

// The agent on whichever transport this VM has: the virtio-serial port
// banger's initramfs named, else vsock (firecracker).
pid_t start_agent(const char* pid1) {
  pid_t p = ::fork();
  if (p != 0) return p;
  ::setsid();
  ::setenv(kPid1Env, pid1, 1);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::access("/dev/virtio-ports/banger.agent", F_OK) == 0) {
    ::execl("/proc/self/exe", "banger-agent", "--serial", "/dev/virtio-ports/banger.agent", static_cast<char*>(nullptr));
  } else {
    ::execl("/proc/self/exe", "banger-agent", "--vsock", "52", static_cast<char*>(nullptr));
  }
  ::_exit(127);
}

[[noreturn]] void power_off() {
  say("powering off");
  ::kill(-1, SIGTERM);
  // Give processes a moment to exit, reaping them as they go.
  timespec start{};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= 2) break;
    ::usleep(50 * 1000);
  }
  ::kill(-1, SIGKILL);
  ::sync();
  ::reboot(RB_POWER_OFF);
  ::_exit(0);
}

}  // namespace

int run_init() {
  if (::getpid() != 1) {
    say("must run as PID 1 (it is the init of a banger VM)");
    return 2;
  }
  mount_api("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_api("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_api("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  mount_api("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
  mount_api("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_api("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  ::setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);

  if (const char* systemd = find_systemd()) {
    start_agent("systemd");
    say("starting ", systemd);
    ::execl(systemd, systemd, static_cast<char*>(nullptr));
    say("cannot exec systemd; staying as PID 1");
  }

  // Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot.
  ::reboot(RB_DISABLE_CAD);
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGUSR2, SIGTERM, SIGINT, SIGPWR}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  pid_t agent = start_agent("banger");
  say("agent started; no init system in this image, banger-init stays PID 1");
  // An SSH server installed by banger on an earlier boot (guest_sshd.lua).
  if (::access("/usr/sbin/sshd", X_OK) == 0 && ::access("/etc/ssh/sshd_config", R_OK) == 0) {
    ::mkdir("/run/sshd", 0755);
    if (::fork() == 0) {
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // An absolute argv[0]: sshd refuses to start otherwise (it re-executes itself).
      ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", static_cast<char*>(nullptr));  // daemonises; we reap it
      ::_exit(127);
    }
  }
  for (;;) {
    siginfo_t info{};
    if (::sigwaitinfo(&set, &info) < 0) continue;
    if (info.si_signo != SIGCHLD) power_off();
    pid_t p;
    while ((p = ::waitpid(-1, nullptr, WNOHANG)) > 0) {
      if (p == agent) {
        say("the agent exited; restarting it");
        ::usleep(200 * 1000);
        agent = start_agent("banger");
      }
    }
  }
}

}  // namespace banger::agent
