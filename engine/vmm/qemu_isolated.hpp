#pragma once
// QEMU run as a uid of its own (the root helper's launch_vmm). Such a QEMU
// can open none of the owner's files, so everything it needs arrives as an
// open descriptor: disks as fdsets, kernel and initrd by /proc/self/fd/N,
// QMP and the agent as listening sockets the owner made, console and log as
// writable files. Its command line names only descriptor numbers.
//
// Two halves: the owner's side opens the objects and describes them
// (isolated_request); the helper validates that description, maps the
// descriptors into the child and builds argv (isolated_argv). The helper
// never opens a path the owner named.
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"
#include "engine/vmm/driver.hpp"

namespace banger::vmm {

// The typed launch, with descriptor numbers as the child will see them.
struct IsolatedQemu {
  std::string binary;  // argv[0], already validated by the helper
  std::string name;
  int vcpus = 1;
  int memory_mib = 256;
  bool kvm = false;
  std::string cmdline;
  std::string mac;  // empty: no NIC
  int kernel = -1, initrd = -1, qmp = -1, agent = -1, forward = -1, console = -1, tap = -1;
  int memory = -1;          // the RAM file, mapped shared (QEMU opens /proc/self/fd/N)
  std::string generation;   // -device vmgenid (pc only); empty: none
  bool incoming = false;    // a restore: -S -incoming defer
  struct Backing {
    int fd = -1;         // read-only
    std::string format;  // raw | qcow2
  };
  struct Disk {
    std::string id;
    std::string format;  // raw | qcow2
    bool read_only = false;
    int fd = -1;
    int ro = -1;  // a writable disk's read-only twin: QEMU reopens a node read-only when a snapshot makes it a backing file
    std::vector<Backing> backing;  // qcow2: the chain below it, nearest first, down to the raw image
  };
  std::vector<Disk> disks;
};

std::vector<std::string> isolated_argv(const IsolatedQemu& q);

// The owner's side: the launch_vmm parameters for `spec` and the
// descriptors they index (the parameters' kernel, disks[i].fd, ... are
// positions in `fds`). Makes the QMP, agent and forward sockets (listening, 0600 in
// the VM's 0700 runtime dir) and opens the console log and QEMU's log.
struct IsolatedRequest {
  nlohmann::json params;
  std::vector<UniqueFd> fds;
};
IsolatedRequest isolated_request(const VmSpec& spec, bool kvm);

// The RAM file an isolated VM maps: its own, shared. QEMU 7.2 opens even a
// privately mapped RAM file read-write, so an isolated QEMU never gets a
// file other VMs map (a snapshot's RAM): a restore gets a copy of the
// snapshot's RAM data at <vm_dir>/ram (isolated_request makes it).
std::string isolated_memory_file(const VmSpec& spec);

// The Handles of a QEMU the helper launched, marked launcher = "helper"
// (signals go through the helper); adopt_isolated also waits for QMP and,
// for a restore, loads the state (the VM is left paused).
Handles isolated_handles(const VmSpec& spec, pid_t pid, std::vector<std::string> argv);
Handles adopt_isolated(const VmSpec& spec, pid_t pid, std::vector<std::string> argv, const StageFn& stage);

}  // namespace banger::vmm
