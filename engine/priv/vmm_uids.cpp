#include "engine/priv/vmm_uids.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/read_file.hpp"

namespace banger::priv {
namespace {

constexpr const char* kLockDir = "/run/banger-root";  // root's alone (see engine/net/nat.cpp)

// The real uid in /proc/<pid>/status, or -1 when the process is gone.
long real_uid(const std::string& pid) {
  std::string status;
  try {
    status = read_file("/proc/" + pid + "/status");
  } catch (const Error&) {
    return -1;
  }
  auto at = status.find("\nUid:");
  if (at == std::string::npos) return -1;
  return std::strtol(status.c_str() + at + 5, nullptr, 10);
}

}  // namespace

FileLock vmm_uid_lock() {
  if (::mkdir(kLockDir, 0700) != 0 && errno != EEXIST) throw Error::last("mkdir", kLockDir);
  return FileLock(std::string(kLockDir) + "/vmm-uid.lock", true, std::chrono::seconds(30));
}

uid_t pick_vmm_uid() {
  std::set<uid_t> used;
  DIR* d = ::opendir("/proc");
  if (!d) throw Error::last("opendir", "/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    long uid = real_uid(e->d_name);
    if (uid >= 0 && is_vmm_uid(static_cast<uid_t>(uid))) used.insert(static_cast<uid_t>(uid));
  }
  ::closedir(d);
  for (uid_t u = kVmmUidBase; u < kVmmUidBase + kVmmUidCount; ++u) {
    if (!used.count(u)) return u;
  }
  throw Error("EAGAIN", "every isolated-hypervisor uid is in use (" + std::to_string(kVmmUidCount) + ")");
}

void launched_vmm(pid_t pid) {
  long uid = real_uid(std::to_string(pid));
  if (uid < 0) throw Error("ESRCH", "no process " + std::to_string(pid));
  auto refuse = [&](const std::string& why) {
    throw Error("EPERM", "refusing to signal pid " + std::to_string(pid) + ": " + why);
  };
  if (!is_vmm_uid(static_cast<uid_t>(uid))) refuse("it is not an isolated hypervisor (uid " + std::to_string(uid) + ")");
  auto argv = process::cmdline(pid);
  if (argv.empty() || std::filesystem::path(argv[0]).filename().string().rfind("qemu-system-", 0) != 0) {
    refuse("its command line is not qemu-system-*");
  }
  bool named = false;
  for (size_t i = 0; i + 1 < argv.size(); ++i) named = named || (argv[i] == "-name" && argv[i + 1].rfind("banger-", 0) == 0);
  if (!named) refuse("its command line is not one banger writes (-name banger-*)");
}

}  // namespace banger::priv
