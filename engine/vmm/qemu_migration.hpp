#pragma once
// QEMU's migration machinery as banger uses it for snapshots: the device
// state goes to or comes from a file through a descriptor passed on QMP
// (getfd + an "fd:" URI; never exec:, which -sandbox spawn=deny kills), and
// a RAM file shared by both ends stays out of the stream (x-ignore-shared).
#include <chrono>
#include <string>

#include "engine/vmm/driver.hpp"
#include "engine/vmm/qmp.hpp"

namespace banger::vmm {

// x-ignore-shared on or off; both ends of a stream must agree.
void set_ignore_shared(Qmp& qmp, bool on);

// Polls query-migrate until the migration completes; throws EHYPERVISOR
// with QEMU's error description when it fails, ETIMEDOUT after `timeout`.
// Returns the final query-migrate answer.
nlohmann::json wait_for_migration(Qmp& qmp, std::chrono::milliseconds timeout, const std::string& what);

// Loads `restore` into the QEMU behind `h`, started with -S -incoming defer:
// x-ignore-shared when the RAM is a file, getfd of the state file opened
// here, migrate-incoming "fd:...", then waits. The VM is left paused.
// Errors quote the end of QEMU's log at `log`.
void restore_incoming(const Handles& h, const RestoreSpec& restore, const std::string& log, const StageFn& stage);

}  // namespace banger::vmm
