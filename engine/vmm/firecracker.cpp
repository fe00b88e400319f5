#include "engine/vmm/firecracker.hpp"

#include <sys/stat.h>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/vmm/firecracker_api.hpp"
#include "engine/vmm/firecracker_config.hpp"
#include "engine/vmm/firecracker_process.hpp"
#include "engine/vmm/firecracker_snapshot.hpp"

namespace banger::vmm {
namespace {

using nlohmann::json;
namespace fc = firecracker;

void check_driver(const Handles& h) {
  if (h.driver != "firecracker") throw Error("EINVAL", "firecracker: handles belong to driver '" + h.driver + "'");
}

// vmm::alive(h) without its exception: process::cmdline (std::ifstream)
// throws when the process exits during the read.
bool running(const Handles& h) {
  struct stat st {};
  return h.pid > 0 && !h.cmdline.empty() && process::cmdline(h.pid) == h.cmdline &&
         ::lstat(h.control_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

fc::Api api_for(const Handles& h, const FirecrackerOptions& o) {
  check_driver(h);
  if (!running(h)) {
    fc::reap_if_own_zombie(h.pid);
    throw Error("ESRCH", "firecracker: VM process " + std::to_string(h.pid) + " is not running");
  }
  return fc::Api(h.control_socket, o.request_timeout);
}

void stage_of(const StageFn& stage, const std::string& name, const std::string& detail) {
  if (stage) stage(name, detail);
}

class FirecrackerDriver final : public Driver {
 public:
  explicit FirecrackerDriver(FirecrackerOptions o) : opts_(o) {}

  std::string name() const override { return "firecracker"; }

  Handles launch(const VmSpec& spec, const StageFn& stage) override {
    if (spec.restore.active()) return fc::restore(spec, stage, opts_);
    fc::validate(spec);
    fc::Layout l = fc::layout_for(spec);
    fc::prepare_files(spec, l);
    stage_of(stage, "launch", spec.binary);
    fc::Spawned proc(spec, l, opts_);
    stage_of(stage, "configure", l.api_socket);
    proc.call(fc::logger_call(l));
    proc.call(fc::metrics_call(l));
    for (const auto& c : fc::boot_calls(spec, l)) proc.call(c);
    stage_of(stage, "start", "InstanceStart");
    proc.call(fc::instance_start_call());
    Handles h = proc.handles(spec);
    proc.release();
    return h;
  }

  RunState status(const Handles& h) override {
    check_driver(h);
    if (!running(h)) {
      fc::reap_if_own_zombie(h.pid);
      return RunState::stopped;
    }
    try {
      std::string s = fc::Api(h.control_socket, opts_.request_timeout).state();
      if (s == "Running") return RunState::running;
      if (s == "Paused") return RunState::paused;
      return RunState::unknown;  // "Not started": a launch that never finished
    } catch (const Error& e) {
      if (e.code() == "ECANCELED") throw;
      return running(h) ? RunState::unknown : RunState::stopped;
    }
  }

  bool shutdown(const Handles& h, std::chrono::milliseconds grace) override {
    check_driver(h);
    fc::Hypervisor proc(h);
    if (!proc.valid()) {
      fc::reap_if_own_zombie(h.pid);
      return true;
    }
    bool asked = false;
    try {
      fc::Api api(h.control_socket, opts_.request_timeout);
      // A paused guest cannot react to the keyboard; let it run first.
      if (api.state() == "Paused") api.patch("/vm", json{{"state", "Resumed"}});
      api.put("/actions", json{{"action_type", "SendCtrlAltDel"}});
      asked = true;
    } catch (const Error& e) {
      if (e.code() == "ECANCELED") throw;
      // Not started, or the API is wedged: nothing will stop by itself.
    }
    // Waiting on the pidfd, not on /proc: the command line vanishes while
    // the exiting process still holds its sockets.
    if (proc.wait_exit(asked ? grace : std::chrono::milliseconds(0))) return true;
    // The pidfd was opened while /proc showed the recorded command line: this
    // signals that process or, if it is gone, nothing (never a pid reuser).
    proc.kill();
    if (!proc.wait_exit(std::chrono::seconds(5))) {
      throw Error("ETIMEDOUT", "firecracker: pid " + std::to_string(h.pid) + " did not exit after SIGKILL");
    }
    return false;
  }

  void pause(const Handles& h) override { api_for(h, opts_).patch("/vm", json{{"state", "Paused"}}); }

  void resume(const Handles& h) override { api_for(h, opts_).patch("/vm", json{{"state", "Resumed"}}); }

 private:
  FirecrackerOptions opts_;
};

}  // namespace

std::unique_ptr<Driver> make_firecracker_driver(const FirecrackerOptions& opts) {
  return std::make_unique<FirecrackerDriver>(opts);
}

namespace firecracker {

SnapshotStats snapshot(const Handles& h, const SnapshotFiles& files, const FirecrackerOptions& opts) {
  return take_snapshot(api_for(h, opts), h.pid, files);
}

std::map<std::string, std::string> block_files(const Handles& h, const FirecrackerOptions& opts) {
  return drive_files(api_for(h, opts), h.pid);
}

void hotplug_disk(const Handles& h, const std::string& disk_id) {
  check_driver(h);
  throw Error("ENOTSUP", "firecracker: cannot hot-plug disk '" + disk_id +
                             "': banger's firecracker VMs get their drives before boot only (Firecracker hot-plugs only "
                             "with --enable-pci, which banger does not use); boot the VM with the disk instead");
}

}  // namespace firecracker

}  // namespace banger::vmm
