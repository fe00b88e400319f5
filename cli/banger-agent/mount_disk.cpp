#include "mount_disk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "guest_system.hpp"

namespace banger::agent {
namespace {

std::string read_small(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  char buf[128];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// The virtio disks the guest has now: name -> serial.
std::vector<std::pair<std::string, std::string>> virtio_disks() {
  std::vector<std::pair<std::string, std::string>> out;
  DIR* d = ::opendir("/sys/block");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("vd", 0) != 0) continue;
    out.emplace_back(name, read_small("/sys/block/" + name + "/serial"));
  }
  ::closedir(d);
  return out;
}

void make_dirs(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string part = path.substr(0, slash);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) throw Error::last("mkdir", part);
    if (slash == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error::last("stat", path);
  if (!S_ISDIR(st.st_mode)) throw Error("ENOTDIR", "mount target " + path + " is not a directory");
}

}  // namespace

std::string mount_by_serial(const guest::MountRequest& m) {
  const long long deadline = monotonic_ms() + m.timeout_ms;
  const std::string which = "serial '" + m.serial + "'";
  std::string name;
  std::vector<std::pair<std::string, std::string>> seen;
  for (;;) {
    seen = virtio_disks();
    for (const auto& [disk, serial] : seen) {
      if (serial == m.serial) name = disk;
    }
    if (!name.empty() || monotonic_ms() >= deadline) break;
    ::usleep(20 * 1000);
  }
  if (name.empty()) {
    std::string list;
    for (const auto& [disk, serial] : seen) list += (list.empty() ? "" : ", ") + disk + (serial.empty() ? "" : " (" + serial + ")");
    throw Error("ENODEV", "no virtio disk with " + which + " appeared within " + std::to_string(m.timeout_ms) +
                              " ms (disks: " + (list.empty() ? "none" : list) + ")");
  }
  const std::string dev = "/dev/" + name;
  struct stat ds {};
  // devtmpfs makes the node right after the disk is announced.
  for (long long end = std::max(deadline, monotonic_ms() + 1000);;) {
    if (::stat(dev.c_str(), &ds) == 0 && S_ISBLK(ds.st_mode)) break;
    if (monotonic_ms() >= end) throw Error("ENODEV", dev + " (" + which + ") has no device node");
    ::usleep(20 * 1000);
  }
  make_dirs(m.target);
  // Mounted there already (a repeated request): the target is the root of that device's filesystem.
  struct stat ts {}, ps {};
  if (::stat(m.target.c_str(), &ts) == 0 && ::stat((m.target + "/..").c_str(), &ps) == 0 && ts.st_dev == ds.st_rdev &&
      ps.st_dev != ts.st_dev)
    return dev;
  if (::mount(dev.c_str(), m.target.c_str(), m.fstype.c_str(), 0, nullptr) != 0) {
    throw Error::last("mount " + dev + " (" + which + ", " + m.fstype + ") on", m.target);
  }
  return dev;
}

}  // namespace banger::agent
