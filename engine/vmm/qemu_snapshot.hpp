#pragma once
// Snapshots of a running QEMU VM, disk hot-plug and the block view crash
// recovery reads (docs/snapshots.md). Every file reaches QEMU as a
// descriptor passed on QMP (getfd, add-fd), so the same code serves a QEMU
// running as the owner and one the root helper started as a uid of its own.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/vmm/driver.hpp"

namespace banger::vmm {

struct SnapshotDisk {
  std::string id;       // the device: "rootfs", "work"
  std::string current;  // the file the VM writes now
  std::string layer;    // where `current` is linked, frozen (same filesystem)
  std::string next;     // the qcow2 overlay above `layer` the VM continues on
  std::string format;   // of `current` (raw | qcow2); empty: read from its header
};

struct SnapshotFiles {
  std::string state;  // the device state (the migration stream)
  std::string ram;    // where a shared RAM file's data goes; unused when the RAM is private
  std::vector<SnapshotDisk> disks;  // every disk the VM has, none left out (a restore needs them all)
  bool sync = true;   // fsync state, ram and their directory before returning
};

struct SnapshotStats {
  std::int64_t pause_ms_so_far = 0;  // from `stop` to the return
  std::int64_t disks_ms = 0, migrate_ms = 0, ram_copy_ms = 0, sync_ms = 0;
  std::uint64_t state_bytes = 0;
  std::uint64_t ram_bytes = 0;  // data copied from the RAM file (0 for a stream)
  std::string ram;              // "file": RAM in files.ram; "stream": RAM inside the state
  struct Disk {
    std::string id, layer, next, node;  // node: the overlay's block node in QEMU
  };
  std::vector<Disk> disks;
};

// Pauses the VM (if it runs) and saves it into `files`; leaves it paused
// (postmigrate: vmm.resume continues it). Preparation that needs no pause
// (links, overlay files, descriptors) happens before the stop. Order inside
// the pause: the disks switch to their `next` overlays in one QMP
// transaction, then the device state is written, then the RAM data is
// copied. On failure the files this call created are removed; the error
// says whether the disks were already switched (then the VM writes to
// `next`, which names `layer` as its backing file).
SnapshotStats qemu_snapshot(const Handles& h, const SnapshotFiles& files);

// { device id = file of its active layer }, from query-block: a path, or,
// for a file QEMU got as a descriptor, its name now (found by the identity
// recorded when it was added: a snapshot's `next` renamed over `current`
// reads as `current`), or "/dev/fdset/N" for one given on the command line
// (an isolated VM's disks before any snapshot).
std::map<std::string, std::string> qemu_block_files(const Handles& h);

struct HotplugDisk {
  std::string id;  // block node and device id: [a-z0-9-], 1..16
  std::string path;
  std::string format = "raw";  // raw | qcow2 (its backing chain is opened here too)
  std::string serial;          // what the guest sees (/sys/block/vdX/serial): printable, no comma, <= 20 bytes
  bool read_only = false;
};

// Adds a virtio-blk disk to a running or paused VM on -M pc (add-fd +
// blockdev-add of /dev/fdset/N + device_add). ENOTSUP on microvm, which has
// no hot-plug.
void qemu_hotplug_disk(const Handles& h, const HotplugDisk& disk);

}  // namespace banger::vmm
