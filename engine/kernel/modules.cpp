#include "engine/kernel/modules.hpp"

#include <functional>
#include <set>

#include "engine/core/error.hpp"
#include "engine/kernel/modinfo.hpp"

namespace banger::kernel {

const std::vector<std::string>& required_modules() {
  static const std::vector<std::string> v = {"virtio", "virtio_ring", "virtio_pci", "virtio_mmio", "virtio_blk",
                                             "virtio_net", "virtio_console", "ext4"};
  return v;
}

const std::vector<std::string>& optional_modules() {
  static const std::vector<std::string> v = {"virtio_pci_modern_dev", "virtio_pci_legacy_dev", "vsock",
                                             "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
                                             "virtio_rng"};
  return v;
}

std::vector<std::string> resolve_modules(const KernelFiles& k) {
  const std::set<std::string> builtin(k.builtin.begin(), k.builtin.end());
  std::vector<std::string> order;
  std::set<std::string> done, visiting;

  // Depth-first, dependencies before dependents; a cycle would be a broken
  // package, reported rather than looped on.
  std::function<void(const std::string&, const std::string&)> visit = [&](const std::string& name,
                                                                          const std::string& wanted_by) {
    if (done.count(name) || builtin.count(name)) return;
    if (visiting.count(name)) throw Error("EINVAL", "module dependency cycle at " + name);
    auto it = k.modules.find(name);
    if (it == k.modules.end()) {
      throw Error("ENOENT", "kernel " + k.version + " lacks module " + name +
                                (wanted_by.empty() ? " (neither a module nor built in)" : " needed by " + wanted_by));
    }
    visiting.insert(name);
    for (const std::string& dep : read_modinfo(it->second).depends) visit(dep, name);
    visiting.erase(name);
    done.insert(name);
    order.push_back(name);
  };
  for (const std::string& m : required_modules()) visit(m, "");
  for (const std::string& m : optional_modules()) {
    if (k.modules.count(m)) visit(m, "");
  }
  return order;
}

}  // namespace banger::kernel
