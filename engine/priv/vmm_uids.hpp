#pragma once
// The uids isolated hypervisors run as: a block far above login users,
// subordinate-uid ranges and nobody, each VMM taking one no running process
// uses (its gid is the same number). Membership of this range, together with
// a QEMU command line that banger writes, is what lets signal_vmm act.
#include <sys/types.h>

#include <string>

#include "engine/core/file_lock.hpp"

namespace banger::priv {

inline constexpr uid_t kVmmUidBase = 0x7e000000;  // 2113929216
inline constexpr uid_t kVmmUidCount = 4096;

inline bool is_vmm_uid(uid_t uid) { return uid >= kVmmUidBase && uid < kVmmUidBase + kVmmUidCount; }

// Serialises uid picks between processes (root-only lock file).
FileLock vmm_uid_lock();
// The lowest uid of the range that no process has as its real uid.
uid_t pick_vmm_uid();
// Throws EPERM unless `pid` runs with a uid of the range and its command
// line is a qemu-system-* binary given -name banger-*; ESRCH when it is gone.
void launched_vmm(pid_t pid);

}  // namespace banger::priv
