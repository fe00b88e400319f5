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
  int kernel = -1, initrd = -1, qmp = -1, agent = -1, console = -1, tap = -1;
  struct Disk {
    std::string id;
    std::string format;  // raw | qcow2
    bool read_only = false;
    int fd = -1;
    int backing = -1;  // qcow2: the raw base, read-only
  };
  std::vector<Disk> disks;
};

std::vector<std::string> isolated_argv(const IsolatedQemu& q);

// The owner's side: the launch_vmm parameters for `spec` and the
// descriptors they index (the parameters' kernel, disks[i].fd, ... are
// positions in `fds`). Makes the QMP and agent sockets (listening, 0600 in
// the VM's 0700 runtime dir) and opens the console log and QEMU's log.
struct IsolatedRequest {
  nlohmann::json params;
  std::vector<UniqueFd> fds;
};
IsolatedRequest isolated_request(const VmSpec& spec, bool kvm);

// The raw base a qcow2 overlay names in its header ("" if none).
std::string qcow2_backing_file(int fd, const std::string& what);

// The Handles of a QEMU the helper launched, marked launcher = "helper"
// (signals go through the helper); adopt_isolated also waits for QMP.
Handles isolated_handles(const VmSpec& spec, pid_t pid, std::vector<std::string> argv);
Handles adopt_isolated(const VmSpec& spec, pid_t pid, std::vector<std::string> argv, const StageFn& stage);

}  // namespace banger::vmm
