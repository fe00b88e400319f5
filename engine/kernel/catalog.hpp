#pragma once
// The kernel catalog: <kernels_dir>/<name>/{vmlinux, initrd.img, manifest.json}.
// An import builds everything in a hidden temporary directory beside the
// catalog and renames it into place, so a failed or interrupted import
// leaves nothing behind and a reader never sees half a kernel.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace banger::kernel {

// Letters, digits, '.', '_' and '-', at most 64, not starting with '.' or
// '-': a name is a directory under the catalog and must not escape it.
void validate_name(const std::string& name);

struct ImportOptions {
  std::string source;       // .deb, directory or vmlinuz/vmlinux
  std::string name;
  std::string kernels_dir;
  std::string busybox = "/bin/busybox";
  std::string agent;        // banger-agent, for the initramfs
  std::string distro;       // e.g. "debian" (recorded only)
  std::string origin;       // where the source came from (recorded only)
  bool replace = false;     // replace an existing kernel of that name
};

// Now in UTC, as manifests record it ("2026-01-02T03:04:05Z").
std::string utc_now();

// Returns the manifest.
nlohmann::json import_kernel(const ImportOptions& opts);

std::vector<nlohmann::json> list_kernels(const std::string& kernels_dir);
nlohmann::json show_kernel(const std::string& kernels_dir, const std::string& name);
void remove_kernel(const std::string& kernels_dir, const std::string& name);

}  // namespace banger::kernel
