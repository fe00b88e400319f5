#pragma once
// What a kernel import reads, whatever it came from: a Debian package, a
// directory (an unpacked package or /boot + /lib/modules), or a bare
// vmlinuz/vmlinux.
#include <map>
#include <string>
#include <vector>

namespace banger::kernel {

struct KernelFiles {
  std::string version;  // e.g. 6.1.0-56-cloud-amd64 ("" when unknown)
  std::string image;    // vmlinuz (bzImage) or vmlinux bytes
  std::string config;   // boot/config-<version>, if present
  std::vector<std::string> builtin;               // modules.builtin (names)
  std::map<std::string, std::string> modules;     // module name -> .ko bytes
  std::string source_kind;                        // "deb", "dir", "file"
};

KernelFiles read_deb(const std::string& path);
KernelFiles read_dir(const std::string& path);
KernelFiles read_image_file(const std::string& path);
// Picks the reader from what `path` is.
KernelFiles read_kernel_source(const std::string& path);

}  // namespace banger::kernel
