#pragma once
// The firecracker driver. launch() spawns `<binary> --api-sock
// <runtime_dir>/fc.sock --id <vm id>` detached (own session, umask 077, so
// the API socket has no group/other bits from birth, stdout+stderr to the
// console log), waits for the socket, configures the VM through the API
// (logger, metrics, machine-config, boot-source, drives, network interfaces,
// vsock) and sends InstanceStart. With spec.restore it loads a snapshot
// instead and leaves the VM paused. A failure anywhere kills what was
// spawned. Later calls reconnect through the recorded Handles. See
// docs/firecracker.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/vmm/driver.hpp"

namespace banger::vmm {

struct FirecrackerOptions {
  std::chrono::milliseconds api_ready_timeout{5000};  // spawn to API socket accepting
  std::chrono::milliseconds request_timeout{10000};   // each API request
};

std::unique_ptr<Driver> make_firecracker_driver(const FirecrackerOptions& opts = {});

namespace firecracker {

// vmm.snapshot() for firecracker (docs/firecracker.md, "Snapshots and restores").
struct SnapshotDisk {
  std::string id;       // drive id ("rootfs")
  std::string current;  // the file the VM writes (it goes on writing it)
  std::string layer;    // the snapshot's frozen copy, made by clone_disk
};
struct SnapshotFiles {
  std::string state;  // Firecracker's vmstate file
  std::string ram;    // guest memory (always a file of its own)
  std::vector<SnapshotDisk> disks;  // every writable drive of the VM
  bool sync = true;   // fsync the directories of the files made
};
struct SnapshotStats {
  double pause_ms_so_far = 0;  // since the VM stopped running; still paused on return
  double create_ms = 0;        // PUT /snapshot/create
  double disks_ms = 0;         // the layer copies
  std::uint64_t state_bytes = 0;
  std::uint64_t ram_bytes = 0;  // allocated bytes of the RAM file
  struct Disk {
    std::string id, layer, method;  // method: "reflink" | "sparse_copy"
    std::uint64_t bytes = 0;        // data written
    double ms = 0;
  };
  std::vector<Disk> disks;
};

// Pauses the VM if it runs, PUT /snapshot/create (Full) into files.state and
// files.ram, then clones each disk current -> layer; leaves it paused. EINVAL
// (before any pause) for bad files or a disk list that does not match the
// VM's drives; on a later failure the layers made are removed and a VM this
// call paused is resumed.
SnapshotStats snapshot(const Handles& h, const SnapshotFiles& files, const FirecrackerOptions& opts = {});

// { drive id = file }, from GET /vm/config (relative paths resolved against
// the process's working directory).
std::map<std::string, std::string> block_files(const Handles& h, const FirecrackerOptions& opts = {});

// Always ENOTSUP: banger's firecracker VMs get their drives before boot only.
[[noreturn]] void hotplug_disk(const Handles& h, const std::string& disk_id);

}  // namespace firecracker

}  // namespace banger::vmm
