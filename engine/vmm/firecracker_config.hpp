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
// process-level fields (binary, id, directories, agent transport), disks and
// NICs, and then what a fresh boot needs (vCPUs, memory, kernel) or, with
// spec.restore, what a snapshot load needs (state and memory files).
void validate(const VmSpec& spec);

// The path_on_host firecracker is given for a disk: relative to vm_dir (the
// process's working directory) when the disk lives directly in it, so a
// snapshot records "root.img" and a fork started in its own vm_dir opens its
// own copy there (Firecracker's "same relative paths" rule); else absolute.
std::string drive_path(const VmSpec& spec, const DiskSpec& disk);

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

Call snapshot_create_call(const std::string& snapshot_path, const std::string& mem_path);
// PUT /snapshot/load of spec.restore.state with spec.memory_file as the File
// memory backend, not resumed, the taps of spec.nics as network_overrides and
// the layout's vsock socket as vsock_override.
Call snapshot_load_call(const VmSpec& spec, const Layout& l);
// PATCH /drives/<id> {drive_id, path_on_host}: a running or paused VM's
// drive switched to another file.
Call patch_drive_call(const std::string& id, const std::string& path_on_host);

// `path_on_host` as the file it names: relative paths are relative to the
// process's working directory `cwd`.
std::string resolve_drive_path(const std::string& path_on_host, const std::string& cwd);

// After a snapshot load: the PATCH /drives calls that put each drive of the
// loaded VM (`drives`: GET /vm/config's "drives") on spec's file for it,
// none for a drive already there. EINVAL when the snapshot has a drive the
// spec lacks (the fork would keep using a file that is not its own) or the
// other way round (firecracker cannot add one), or read-only differs.
std::vector<Call> drive_switch_calls(const VmSpec& spec, const nlohmann::json& drives);

}  // namespace banger::vmm::firecracker
