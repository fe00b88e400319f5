#pragma once
// The firecracker driver. launch() spawns `<binary> --api-sock
// <runtime_dir>/fc.sock --id <vm id>` detached (own session, umask 077, so
// the API socket has no group/other bits from birth, stdout+stderr to the
// console log), waits for the socket, configures the VM through the API
// (logger, metrics, machine-config, boot-source, drives, network interfaces,
// vsock) and sends InstanceStart. A failure anywhere kills what was spawned.
// Later calls reconnect through the recorded Handles. See docs/firecracker.md.
#include <chrono>
#include <memory>
#include <string>

#include "engine/vmm/driver.hpp"
#include "engine/vmm/firecracker_config.hpp"

namespace banger::vmm {

struct FirecrackerOptions {
  std::chrono::milliseconds api_ready_timeout{5000};  // spawn to API socket accepting
  std::chrono::milliseconds request_timeout{10000};   // each API request
};

std::unique_ptr<Driver> make_firecracker_driver(const FirecrackerOptions& opts = {});

namespace firecracker {

// PUT /snapshot/create (Full) on a paused VM: the guest state goes to
// `snapshot_path`, its memory to `mem_path` (both created or truncated by
// Firecracker). Disks are not part of the snapshot. EINVAL when the VM is
// not paused, ESRCH when it is not running at all.
void snapshot_create(const Handles& h, const std::string& snapshot_path, const std::string& mem_path,
                     const FirecrackerOptions& opts = {});

// Starts a fresh firecracker for `spec` (same layout as launch), sets only
// the logger and metrics, then PUT /snapshot/load. Disks and taps must be
// where they were when the snapshot was taken. The VM is running when
// `restore.resume`, else paused. Kills the process on any failure.
Handles snapshot_load(const VmSpec& spec, const std::string& snapshot_path, const std::string& mem_path,
                      const RestoreOptions& restore = {}, const StageFn& stage = {},
                      const FirecrackerOptions& opts = {});

}  // namespace firecracker
}  // namespace banger::vmm
