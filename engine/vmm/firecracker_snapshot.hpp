#pragma once
// Internal to the firecracker driver: snapshots and restores (see
// docs/firecracker.md, "Snapshots and restores").
#include <sys/types.h>

#include <map>
#include <string>

#include "engine/vmm/driver.hpp"
#include "engine/vmm/firecracker.hpp"
#include "engine/vmm/firecracker_api.hpp"

namespace banger::vmm::firecracker {

// firecracker::snapshot() of the started VM reached through `api` (process
// `pid`): see firecracker.hpp.
SnapshotStats take_snapshot(const Api& api, pid_t pid, const SnapshotFiles& files);

// launch() with spec.restore: a fresh process, logger and metrics only, PUT
// /snapshot/load (not resumed), then every drive put on spec's file for it
// (PATCH /drives, while paused). Kills the process on any failure.
Handles restore(const VmSpec& spec, const StageFn& stage, const FirecrackerOptions& opts);

// { drive id -> file } from GET /vm/config, relative paths resolved against
// the process's working directory.
std::map<std::string, std::string> drive_files(const Api& api, pid_t pid);

}  // namespace banger::vmm::firecracker
