#pragma once
// The QEMU driver. On KVM hosts it runs `-M microvm` with virtio-mmio
// devices; without usable KVM it falls back to TCG on `-M pc` with virtio-pci
// (microvm hangs in timer calibration under TCG; DESIGN.md). Control is QMP
// on a socket in the VM's runtime dir; the agent is reached through a
// virtio-serial port ("banger.agent") backed by a host socket, since hosts
// like these have no vhost-vsock. A second port ("banger.forward") carries
// port forwarding, so a forwarder's session never competes with `vm exec`
// for the agent's one stream.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/vmm/driver.hpp"
#include "engine/vmm/qcow2.hpp"  // create_qcow2_overlay

namespace banger::vmm {

struct QemuLayout {
  std::string qmp_socket;
  std::string agent_socket;
  std::string forward_socket;  // the second port, banger.forward: port forwarding's agent sessions
  std::string log;  // QEMU's own stderr
};
QemuLayout qemu_layout(const VmSpec& spec);

// The exact argv for `spec`; `kvm` picks microvm+KVM over pc+TCG.
std::vector<std::string> qemu_argv(const VmSpec& spec, bool kvm);

// Guest RAM in a file: `path` as QEMU opens it, mapped shared or private.
struct MemoryBackend {
  std::string path;  // empty: anonymous RAM (plain -m)
  bool shared = true;
};

// The part of argv both launch paths share: binary, -name banger-<name>,
// machine and accelerator, sizes and RAM, no defaults, the seccomp sandbox.
std::vector<std::string> qemu_machine_args(const std::string& binary, const std::string& name, bool kvm, int vcpus,
                                           int memory_mib, const MemoryBackend& memory = {});
// The arguments both launch paths end with: the VM generation device
// (-M pc only) and, for a restore, -S -incoming defer. Appended after every
// other device, so a cold launch and a restore of one spec have the same
// devices in the same order (a migration stream needs that).
void qemu_tail_args(std::vector<std::string>& a, bool kvm, const std::string& generation, bool incoming);
// Throws EINVAL unless `s` is a UUID (8-4-4-4-12 hex digits).
void check_generation(const std::string& s);
// microvm has only virtio-mmio; pc uses virtio-pci.
inline std::string qemu_bus(bool kvm) { return kvm ? "device" : "pci"; }

// The end of QEMU's own log (its stderr), for error messages.
std::string qemu_log_tail(const std::string& path, size_t max = 2000);

// Waits until QEMU answers on QMP; `running` says whether it still exists.
void wait_for_qmp(const QemuLayout& lay, const std::function<bool()>& running, const StageFn& stage, pid_t pid);

std::unique_ptr<Driver> make_qemu_driver();

// Tells whatever QEMU listens on `qmp_socket` to quit and waits until nothing
// listens there any more. Returns false when nothing listened to begin with.
// It reaches a QEMU its caller cannot signal (one the root helper started as
// a uid of its own) and one whose pid was never recorded: only the process
// holding this VM's own socket answers. Throws ETIMEDOUT when the socket
// still answers after `timeout`.
bool qmp_quit(const std::string& qmp_socket, std::chrono::milliseconds timeout);

}  // namespace banger::vmm
