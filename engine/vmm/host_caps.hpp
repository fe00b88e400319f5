#pragma once
// What this host can run. "Usable KVM" means /dev/kvm opens read-write AND
// the host has hardware virtualisation (kvm_intel or kvm_amd). A /dev/kvm
// backed only by kvm_pvm (a paravirtual nested hypervisor) cannot run stock
// guest kernels, so it does not count (DESIGN.md, measured facts).
#include <string>

namespace banger::vmm {

struct HostCaps {
  bool kvm_device = false;  // /dev/kvm opens read-write
  bool kvm_hardware = false;  // kvm_intel or kvm_amd loaded
  bool kvm_pvm = false;  // kvm_pvm loaded
  bool kvm_usable() const { return kvm_device && kvm_hardware; }
  bool vhost_vsock = false;  // /dev/vhost-vsock exists
  bool tun = false;          // /dev/net/tun exists
};

HostCaps detect_host();

// Absolute path of `name`, or "" (host_tools::find: PATH, then sbin).
std::string find_executable(const std::string& name);

}  // namespace banger::vmm
