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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace banger::vmm {

struct DiskSpec {
  std::string id;          // "rootfs", "work"
  std::string path;        // image file on the host
  std::string format = "raw";  // raw | qcow2 (qemu only)
  bool read_only = false;
  bool root = false;
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

// Where a restored VM comes from (VmSpec::restore).
struct RestoreSpec {
  std::string state;         // device state: QEMU migration stream, or firecracker's vmstate file
  std::string ram = "file";  // "file": guest RAM is VmSpec::memory_file; "stream": inside `state` (QEMU)
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
  std::string memory_file;     // guest RAM in a file (QEMU memory-backend-file; firecracker: the snapshot's RAM on restore)
  bool memory_shared = false;  // QEMU share=on (writes reach the file) or off (private copy-on-write)
  std::string generation;      // VM generation id (QEMU -device vmgenid; firecracker makes its own on restore)
  std::optional<RestoreSpec> restore;  // launch() restores this state instead of booting; the VM is left paused
};

// vmm.snapshot(): where the pieces of a snapshot go. The caller made the
// snapshot's directory; the driver writes the files.
struct SnapshotDisk {
  std::string id;       // device id ("rootfs")
  std::string current;  // the file the running VM writes
  std::string layer;    // the snapshot's frozen copy of it
  std::string next;     // QEMU: the overlay the VM continues on (unused by firecracker)
};
struct SnapshotFiles {
  std::string state;  // device state
  std::string ram;    // guest RAM (empty: QEMU puts it in the state stream)
  std::vector<SnapshotDisk> disks;
};
struct SnapshotDiskStats {
  std::string id;
  std::string method;       // "reflink" | "sparse_copy" (clone) or "link" (QEMU layer switch)
  std::uint64_t bytes = 0;  // data written for this disk
  double ms = 0;
};
struct SnapshotStats {
  double pause_ms_so_far = 0;     // since the VM stopped running; it is still paused on return
  std::uint64_t state_bytes = 0;  // size of the state file
  std::uint64_t ram_bytes = 0;    // data in the RAM file (allocated bytes), 0 when in the stream
  std::string ram = "file";       // "file" | "stream"
  std::vector<SnapshotDiskStats> disks;
};

// vmm.hotplug_disk(): a disk added to a running VM.
struct HotplugDisk {
  std::string id;
  std::string path;
  std::string format = "raw";  // raw | qcow2
  std::string serial;
  bool read_only = false;
};

struct Handles {
  std::string driver;
  pid_t pid = -1;
  std::vector<std::string> cmdline;  // as launched; liveness compares /proc/<pid>/cmdline
  std::string control_socket;        // firecracker API socket or QMP socket
  AgentTransport agent;
  std::string launcher;  // "" (banger spawned it, as the owner) or "helper" (the root helper did, as a VMM uid)
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
  // Saves the VM into `files` and leaves it paused (the caller resumes).
  // The defaults raise ENOTSUP naming the driver.
  virtual SnapshotStats snapshot(const Handles& h, const SnapshotFiles& files);
  virtual void hotplug_disk(const Handles& h, const HotplugDisk& disk);
  // { device id -> file of the active layer }
  virtual std::map<std::string, std::string> block_files(const Handles& h);
};

// True when the process in `h` is still the hypervisor banger launched:
// the pid exists, its /proc cmdline equals the recorded one, and the control
// socket still exists. Never pid alone (pids are recycled).
bool alive(const Handles& h);

// Kills the hypervisor (SIGKILL) if alive(h); waits for it to go away.
void kill(const Handles& h);

std::unique_ptr<Driver> make_driver(const std::string& name);  // "qemu" | "firecracker"

}  // namespace banger::vmm
