#pragma once
// What the firecracker driver sends: the per-VM file layout, the checks a
// VmSpec must pass before anything is spawned, and the API calls (method,
// path, JSON body) that configure a VM. Pure functions, no I/O, so the exact
// bodies are testable on their own.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine/vmm/driver.hpp"

namespace banger::vmm::firecracker {

struct Layout {
  std::string api_socket;    // <runtime_dir>/fc.sock
  std::string vsock_socket;  // agent.path, else <runtime_dir>/fc.vsock; empty without vsock
  std::string log;           // <vm_dir>/firecracker.log  (PUT /logger)
  std::string metrics;       // <vm_dir>/firecracker.metrics (PUT /metrics)
  std::string console;       // console_log, else <vm_dir>/console.log: firecracker's stdout+stderr
};

Layout layout_for(const VmSpec& spec);

// Throws banger::Error("EINVAL", ...) naming the offending field. Checks the
// process-level fields (binary, id, directories, agent transport) and, with
// `boot`, what a fresh boot needs (vCPUs, memory, kernel, disks, NICs).
void validate(const VmSpec& spec, bool boot = true);

struct Call {
  std::string method;
  std::string path;
  nlohmann::json body;
};

Call logger_call(const Layout& l);
Call metrics_call(const Layout& l);
// Everything between PUT /metrics and InstanceStart, in order:
// machine-config, boot-source, drives, network interfaces, vsock.
std::vector<Call> boot_calls(const VmSpec& spec, const Layout& l);
Call instance_start_call();

struct RestoreOptions {
  bool resume = true;             // resume_vm: running once loaded, else Paused
  bool override_network = false;  // network_overrides from spec.nics (Firecracker >= 1.12)
  bool override_vsock = false;    // vsock_override with the layout's socket (Firecracker >= 1.16)
};
Call snapshot_create_call(const std::string& snapshot_path, const std::string& mem_path);
Call snapshot_load_call(const VmSpec& spec, const Layout& l, const std::string& snapshot_path,
                        const std::string& mem_path, const RestoreOptions& opts);

}  // namespace banger::vmm::firecracker
