#pragma once
// The QEMU driver. On KVM hosts it runs `-M microvm` with virtio-mmio
// devices; without usable KVM it falls back to TCG on `-M pc` with virtio-pci
// (microvm hangs in timer calibration under TCG; DESIGN.md). Control is QMP
// on a socket in the VM's runtime dir; the agent is reached through a
// virtio-serial port ("banger.agent") backed by a host socket, since hosts
// like these have no vhost-vsock.
#include <memory>
#include <string>
#include <vector>

#include "engine/vmm/driver.hpp"

namespace banger::vmm {

struct QemuLayout {
  std::string qmp_socket;
  std::string agent_socket;
  std::string log;  // QEMU's own stderr
};
QemuLayout qemu_layout(const VmSpec& spec);

// The exact argv for `spec`; `kvm` picks microvm+KVM over pc+TCG.
std::vector<std::string> qemu_argv(const VmSpec& spec, bool kvm);

std::unique_ptr<Driver> make_qemu_driver();

// An O(1) copy-on-write root disk: a qcow2 overlay backed by the raw image.
void create_qcow2_overlay(const std::string& base, const std::string& overlay, long long size_bytes);

}  // namespace banger::vmm
