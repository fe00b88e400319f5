#pragma once
// Internal to the firecracker driver: one firecracker process this banger
// process has just spawned, from spawn until it is handed over as Handles.
// Until release(), destruction kills and reaps it and removes its sockets,
// so an exception anywhere in launch leaves no process behind.
#include <chrono>
#include <string>
#include <vector>

#include "engine/core/process.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/vmm/driver.hpp"
#include "engine/vmm/firecracker.hpp"
#include "engine/vmm/firecracker_api.hpp"
#include "engine/vmm/firecracker_config.hpp"

namespace banger::vmm::firecracker {

// Checks the runtime dir is private (a real 0700-ish dir owned by us),
// removes stale sockets a dead firecracker left behind (refusing live ones
// and non-sockets), and creates the log and metrics files Firecracker
// expects to exist.
void prepare_files(const VmSpec& spec, const Layout& l);

class Spawned {
 public:
  Spawned(const VmSpec& spec, Layout l, const FirecrackerOptions& opts);  // spawns and waits for the API
  ~Spawned();
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;

  // One API request, its answer (null for 204); a failure says whether the
  // process died meanwhile and carries the tail of its output.
  nlohmann::json call(const Call& c);
  Handles handles(const VmSpec& spec) const;
  void release() { released_ = true; }

 private:
  [[noreturn]] void died(const std::string& during);
  void cleanup() noexcept;  // kill, reap, remove sockets (unless released)
  std::string output_tail() const;
  Layout layout_;
  std::vector<std::string> argv_;
  process::Child child_;
  Api api_;
  bool released_ = false;
};

// A recorded hypervisor, held by pidfd so a later process reusing its pid
// can never be waited on or signalled by mistake. Valid only if, once the
// pidfd is open, /proc still shows the recorded command line.
class Hypervisor {
 public:
  explicit Hypervisor(const Handles& h);
  ~Hypervisor();
  Hypervisor(const Hypervisor&) = delete;
  Hypervisor& operator=(const Hypervisor&) = delete;
  bool valid() const { return static_cast<bool>(fd_); }
  // True once the process has fully exited (its files, sockets included,
  // are closed), waiting up to `limit`. Polls the cancel flag.
  bool wait_exit(std::chrono::milliseconds limit);
  void kill();  // SIGKILL through the pidfd

 private:
  UniqueFd fd_;  // the pidfd
  pid_t pid_ = -1;
};


// Reaps `pid` if it is a zombie child of this process (a hypervisor this
// process launched and that has exited since), so none piles up.
void reap_if_own_zombie(pid_t pid);

}  // namespace banger::vmm::firecracker
