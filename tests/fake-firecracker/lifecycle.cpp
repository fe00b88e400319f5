// Actions (InstanceStart, SendCtrlAltDel, FlushMetrics) and PATCH /vm.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "schema.hpp"
#include "vmm.hpp"

namespace fakefc {
namespace {

// How long a "guest" takes to reset after Ctrl-Alt-Del.
std::chrono::milliseconds reset_delay() {
  const char* env = std::getenv("FAKE_FC_CAD_DELAY_MS");
  return std::chrono::milliseconds(env ? std::atoi(env) : 50);
}

bool guest_ignores_ctrl_alt_del() {
  const char* env = std::getenv("FAKE_FC_IGNORE_CTRL_ALT_DEL");
  return env && *env && std::string(env) != "0";
}

}  // namespace

Reply Vmm::put_actions(const std::string& body) {
  json a;
  std::string e = check_body(body, {{"action_type", Type::string, true, {"FlushMetrics", "InstanceStart", "SendCtrlAltDel"}}},
                             true, a);
  if (!e.empty()) return fault(e);
  std::string action = a["action_type"];

  if (action == "InstanceStart") {
    if (state_ != State::not_started) return fault(kPostBoot);
    if (!boot_source_) return fault("Start microvm error: Cannot start microvm without kernel configuration.");
    bool has_root = !drives_.empty() && drives_.front()["is_root_device"] == true;
    if (!has_root) {
      return fault("Start microvm error: fake-firecracker requires a root block device (the real Firecracker would boot "
                   "and the guest would find no root filesystem).");
    }
    state_ = State::running;
    booted_by_ = id_;
    std::printf("fake-firecracker: guest started: kernel %s, boot_args \"%s\", %zu drive(s), %zu NIC(s)\n",
                (*boot_source_)["kernel_image_path"].get<std::string>().c_str(),
                (*boot_source_)["boot_args"].is_string() ? (*boot_source_)["boot_args"].get<std::string>().c_str() : "",
                drives_.size(), nics_.size());
    std::fflush(stdout);
    log("Successfully started microvm that was configured from one single json");
    return ok();
  }

  if (state_ == State::not_started) return fault(kPreBoot);

  if (action == "SendCtrlAltDel") {
    if (!guest_ignores_ctrl_alt_del()) {
      if (state_ == State::running) {
        schedule_exit(0, reset_delay());
      } else {
        ctrl_alt_del_pending_ = true;  // a paused guest reacts once resumed
      }
    }
    return ok();
  }

  // FlushMetrics
  if (metrics_set_) {
    int fd = ::open(metrics_path_.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      std::string line = json{{"utc_timestamp_ms", ms}, {"fake_firecracker", {{"state", state_ == State::paused ? "Paused" : "Running"}}}}.dump() + "\n";
      if (::write(fd, line.data(), line.size()) < 0) {
        // ignored like a full metrics pipe
      }
      ::close(fd);
    }
  }
  return ok();
}

Reply Vmm::patch_vm(const std::string& body) {
  json v;
  std::string e = check_body(body, {{"state", Type::string, true, {"Paused", "Resumed"}}}, true, v);
  if (!e.empty()) return fault(e);
  if (state_ == State::not_started) return fault(kPreBoot);
  if (v["state"] == "Paused") {
    state_ = State::paused;
  } else {
    state_ = State::running;
    if (ctrl_alt_del_pending_) {
      ctrl_alt_del_pending_ = false;
      schedule_exit(0, reset_delay());
    }
  }
  return ok();
}

}  // namespace fakefc
