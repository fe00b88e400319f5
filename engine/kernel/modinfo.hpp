#pragma once
// The .modinfo section of a kernel module (an ELF relocatable): NUL-separated
// key=value strings, among them name= and depends= (comma-separated module
// names). Debian's kernel packages ship no modules.dep (depmod runs at
// install time), so dependencies are read from here.
#include <string>
#include <string_view>
#include <vector>

namespace banger::kernel {

struct ModInfo {
  std::string name;
  std::vector<std::string> depends;
};

// Throws EINVAL when `ko` is not an ELF64 object with a .modinfo section.
ModInfo read_modinfo(std::string_view ko);

// Module names compare with '-' and '_' equal (the kernel's rule).
std::string canonical_module_name(std::string_view name);

}  // namespace banger::kernel
