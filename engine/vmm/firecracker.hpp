#pragma once
// The firecracker driver. launch() spawns `<binary> --api-sock
// <runtime_dir>/fc.sock --id <vm id>` detached (own session, umask 077, so
// the API socket has no group/other bits from birth, stdout+stderr to the
// console log), waits for the socket, configures the VM through the API
// (logger, metrics, machine-config, boot-source, drives, network interfaces,
// vsock) and sends InstanceStart. With spec.restore it loads a snapshot
// instead and leaves the VM paused. A failure anywhere kills what was
// spawned. Later calls reconnect through the recorded Handles; snapshot()
// pauses, saves and freezes the disks; hotplug_disk() is ENOTSUP. See
// docs/firecracker.md.
#include <chrono>
#include <memory>
#include <string>

#include "engine/vmm/driver.hpp"

namespace banger::vmm {

struct FirecrackerOptions {
  std::chrono::milliseconds api_ready_timeout{5000};  // spawn to API socket accepting
  std::chrono::milliseconds request_timeout{10000};   // each API request
};

std::unique_ptr<Driver> make_firecracker_driver(const FirecrackerOptions& opts = {});

}  // namespace banger::vmm
