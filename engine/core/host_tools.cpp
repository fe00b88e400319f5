#include "engine/core/host_tools.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace banger::host_tools {
namespace {

bool executable(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

std::string searched() {
  const char* path = std::getenv("PATH");
  std::string s = path && *path ? "PATH" : "/usr/local/bin, /usr/bin, /bin";
  for (const char* d : kSbinDirs) s += std::string(", ") + d;
  return s;
}

}  // namespace

const std::vector<std::pair<std::string_view, std::string_view>>& table() {
  // Every program banger or the mmdebstrap it runs starts, by Debian 12's
  // package names. Keep it in step with what the engine and lua/ spawn.
  static const std::vector<std::pair<std::string_view, std::string_view>> t = {
      {"qemu-system-x86_64", "qemu-system-x86"},
      {"qemu-img", "qemu-utils"},
      {"firecracker", ""},
      {"resize2fs", "e2fsprogs"},
      {"e2fsck", "e2fsprogs"},
      {"mmdebstrap", "mmdebstrap"},
      {"newuidmap", "uidmap"},  // mmdebstrap's unshare mode, as a regular user
      {"newgidmap", "uidmap"},
      {"apt-get", "apt"},
      {"apt-cache", "apt"},
      {"git", "git"},
      {"ssh", "openssh-client"},
      {"ssh-keygen", "openssh-client"},
      {"ip", "iproute2"},
      {"iptables", "iptables"},
      {"nft", "nftables"},
      {"resolvectl", "systemd-resolved"},
      {"systemctl", "systemd"},
      {"busybox", "busybox-static"},
      {"cp", "coreutils"},
      {"df", "coreutils"},
      {"getent", "libc-bin"},
  };
  return t;
}

std::string find(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return executable(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (const char* d : kSbinDirs) dirs += std::string(":") + d;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    // An empty entry is the current directory to execvp; banger never runs
    // a program from wherever it happens to be started.
    if (colon > start) {
      std::string p = dirs.substr(start, colon - start) + "/" + name;
      if (executable(p)) return p;
    }
    start = colon + 1;
  }
  return "";
}

std::string package_of(std::string_view name) {
  auto slash = name.rfind('/');
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  for (const auto& [tool, package] : table()) {
    if (tool == name) return std::string(package);
  }
  return "";
}

Error not_found(const std::string& name) {
  std::string msg = name.find('/') != std::string::npos ? name + " is not an executable file"
                                                       : name + " not found (searched " + searched() + ")";
  std::string package = package_of(name);
  if (!package.empty()) {
    msg += ": install it with 'apt-get install " + package + "'";
  } else if (name == "firecracker" || name.ends_with("/firecracker")) {
    msg += ": Debian does not package it; install a release binary and set driver.firecracker_bin";
  }
  return Error("ENOTOOL", msg);
}

}  // namespace banger::host_tools
