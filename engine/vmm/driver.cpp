#include "engine/vmm/driver.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"

namespace banger::vmm {

const char* to_string(RunState s) {
  switch (s) {
    case RunState::running: return "running";
    case RunState::paused: return "paused";
    case RunState::stopped: return "stopped";
    case RunState::unknown: return "unknown";
  }
  return "unknown";
}

bool alive(const Handles& h) {
  if (h.pid <= 0) return false;
  if (h.cmdline.empty() || process::cmdline(h.pid) != h.cmdline) return false;
  if (!h.control_socket.empty()) {
    struct stat st {};
    if (::lstat(h.control_socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  }
  return true;
}

void kill(const Handles& h) {
  if (h.pid <= 0 || h.cmdline.empty() || process::cmdline(h.pid) != h.cmdline) return;
  if (::kill(h.pid, SIGKILL) != 0 && errno != ESRCH) throw Error::last("kill", h.driver + " pid " + std::to_string(h.pid));
  // The hypervisor is not our child after a CLI restart, so it cannot be
  // reaped here: wait for its /proc entry to lose the command line.
  for (int i = 0; i < 500 && process::cmdline(h.pid) == h.cmdline; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace banger::vmm

#include "engine/vmm/firecracker.hpp"
#include "engine/vmm/qemu.hpp"

namespace banger::vmm {
std::unique_ptr<Driver> make_driver(const std::string& name) {
  if (name == "qemu") return make_qemu_driver();
  if (name == "firecracker") return make_firecracker_driver();
  throw Error("ENOTSUP", "unknown hypervisor driver '" + name + "' (available: qemu, firecracker)");
}
}  // namespace banger::vmm
