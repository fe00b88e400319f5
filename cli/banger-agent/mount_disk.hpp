#pragma once
// Mounts a disk hot-plugged into the guest, found by its virtio-blk serial
// (docs/agent-protocol.md, "mount"): device names depend on probe order, the
// serial is what the host chose.
#include <string>

#include "engine/guest/requests.hpp"

namespace banger::agent {

// Waits up to m.timeout_ms for /sys/block/vd*/serial == m.serial and its
// /dev node, makes m.target (and its parents), mounts the disk there.
// Returns the device ("/dev/vdc"). A disk already mounted there is fine.
// Throws ENODEV naming the serial when no such disk appears.
std::string mount_by_serial(const guest::MountRequest& m);

}  // namespace banger::agent
