#pragma once
// The hypervisor driver interface. A VM outlives the banger process that
// started it, so drivers are stateless: launch() returns the Handles that
// identify the running hypervisor (pid + command line + control socket), and
// every later call reconnects through them. Handles are what banger writes
// to the VM's handles.json and mirrors into the state row.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace banger::vmm {

struct DiskSpec {
  std::string id;          // "rootfs", "work"
  std::string path;        // image file on the host
  std::string format = "raw";  // raw | qcow2 (qemu only)
  bool read_only = false;
  bool root = false;
  std::string serial = "";  // virtio-blk serial the guest sees in /sys/block/vd*/serial (qemu; "" for none)
};

struct NicSpec {
  std::string id = "eth0";
  std::string tap;  // host tap device (already created and attached)
  std::string mac;  // "02:xx:xx:xx:xx:xx"
  int tap_fd = -1;  // an open queue of the tap, when the hypervisor may not open /dev/net/tun itself (qemu)
};

// How banger reaches the guest agent.
struct AgentTransport {
  enum class Kind { none, vsock_uds, vsock, serial_socket };
  Kind kind = Kind::none;
  std::string path;        // vsock_uds: firecracker's uds_path; serial_socket: QEMU chardev socket
  std::uint32_t cid = 0;   // vsock guest CID (>= 3)
  std::uint32_t port = 52; // agent port
};

// Restoring a saved VM (QEMU: a migration stream; docs/snapshots.md).
struct RestoreSpec {
  std::string state;  // the device state file; empty: a cold boot
  std::string ram = "file";  // "file": RAM is memory_file (x-ignore-shared); "stream": RAM is in `state`
  bool active() const { return !state.empty(); }
};

struct VmSpec {
  std::string id;    // banger's VM id (hex)
  std::string name;  // banger's VM name
  int vcpus = 1;
  int memory_mib = 256;
  std::string kernel;   // ELF vmlinux (firecracker) or vmlinux/bzImage (qemu)
  std::string initrd;   // optional
  std::string cmdline;  // kernel command line
  std::vector<DiskSpec> disks;
  std::vector<NicSpec> nics;
  AgentTransport agent;
  std::string binary;       // hypervisor executable
  std::string vm_dir;       // per-VM state dir: console log, metrics, scratch files
  std::string runtime_dir;  // per-VM 0700 dir for sockets
  std::string console_log;  // serial console output
  std::string accel = "auto";  // qemu: kvm | tcg | auto
  // QEMU: guest RAM in a file (memory-backend-file id=pc.ram): shared, the
  // guest writes into it (a cold VM, so a snapshot saves only device state);
  // private, the file is mapped copy-on-write and never changes (a restore).
  std::string memory_file;
  bool memory_shared = true;
  std::string generation;  // QEMU -M pc: -device vmgenid,guid=<uuid>; empty: no such device
  RestoreSpec restore;
};

struct Handles {
  std::string driver;
  pid_t pid = -1;
  std::vector<std::string> cmdline;  // as launched; liveness compares /proc/<pid>/cmdline
  std::string control_socket;        // firecracker API socket or QMP socket
  AgentTransport agent;
  std::string launcher;  // "" (banger spawned it, as the owner) or "helper" (the root helper did, as a VMM uid)
  std::string memory_file;  // QEMU: the RAM file it maps (a snapshot copies it when shared)
  bool memory_shared = false;
};

enum class RunState { running, paused, stopped, unknown };
const char* to_string(RunState s);

// Progress reporting for long operations ("launch", "configure", "start").
using StageFn = std::function<void(const std::string& stage, const std::string& detail)>;

class Driver {
 public:
  virtual ~Driver() = default;
  virtual std::string name() const = 0;
  // Spawns the hypervisor (detached, its own session), configures and starts
  // the VM. On any failure the hypervisor it spawned is killed before the
  // error propagates: a failed launch leaves no process behind.
  virtual Handles launch(const VmSpec& spec, const StageFn& stage) = 0;
  virtual RunState status(const Handles& h) = 0;
  // Asks the guest to power off (ACPI / Ctrl-Alt-Del), waits up to `grace`,
  // then kills the hypervisor. Returns true when the guest stopped by itself.
  virtual bool shutdown(const Handles& h, std::chrono::milliseconds grace) = 0;
  virtual void pause(const Handles& h) = 0;
  virtual void resume(const Handles& h) = 0;
};

// True when the process in `h` is still the hypervisor banger launched:
// the pid exists, its /proc cmdline equals the recorded one, and the control
// socket still exists. Never pid alone (pids are recycled).
bool alive(const Handles& h);

// Kills the hypervisor (SIGKILL) if alive(h); waits for it to go away.
void kill(const Handles& h);

std::unique_ptr<Driver> make_driver(const std::string& name);  // "qemu" | "firecracker"

}  // namespace banger::vmm
