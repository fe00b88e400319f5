#pragma once
// The initramfs banger boots with: busybox-static, the resolved modules,
// banger's /init and banger-agent (which /init runs to grow the disks'
// filesystems to the disks' sizes), as a cpio "newc" archive written with libarchive (device
// nodes included, so no root is needed to build it).
#include <map>
#include <string>
#include <vector>

namespace banger::kernel {

struct InitramfsSpec {
  std::string busybox = "/bin/busybox";  // must be statically linked
  std::string agent;                     // banger-agent, statically linked too
  std::vector<std::string> modules;      // load order
  const std::map<std::string, std::string>* module_files = nullptr;  // name -> .ko bytes
};

// Writes the archive to `path` (uncompressed: under TCG, unpacking a
// compressed initramfs costs more than reading the bigger file).
void write_initramfs(const std::string& path, const InitramfsSpec& spec);

// The busybox applets /init uses, linked in /bin.
const std::vector<std::string>& initramfs_applets();

}  // namespace banger::kernel
