#pragma once
// Which modules the initramfs must load, in load order.
#include <string>
#include <vector>

#include "engine/kernel/source.hpp"

namespace banger::kernel {

// What banger's boot needs: block and network devices, the console port the
// agent talks on, vsock for firecracker, on both virtio transports.
const std::vector<std::string>& required_modules();
// Wanted where the kernel has them (older kernels lack the split PCI parts).
const std::vector<std::string>& optional_modules();

// The modules to insmod, dependencies first. Built-in modules are skipped; a
// required module that is neither present nor built in is an error naming it.
std::vector<std::string> resolve_modules(const KernelFiles& k);

}  // namespace banger::kernel
