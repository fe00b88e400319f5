#include "engine/kernel/modinfo.hpp"

#include <elf.h>

#include <cstring>

#include "engine/core/error.hpp"

namespace banger::kernel {

std::string canonical_module_name(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c == '-') c = '_';
  return out;
}

ModInfo read_modinfo(std::string_view ko) {
  if (ko.size() < sizeof(Elf64_Ehdr) || ko.substr(0, 4) != ELFMAG || ko[EI_CLASS] != ELFCLASS64)
    throw Error("EINVAL", "not an ELF64 kernel module");
  Elf64_Ehdr eh;
  std::memcpy(&eh, ko.data(), sizeof eh);
  auto section = [&](unsigned i) {
    size_t off = eh.e_shoff + static_cast<size_t>(i) * eh.e_shentsize;
    if (eh.e_shentsize < sizeof(Elf64_Shdr) || off + sizeof(Elf64_Shdr) > ko.size())
      throw Error("EINVAL", "corrupt section table in kernel module");
    Elf64_Shdr sh;
    std::memcpy(&sh, ko.data() + off, sizeof sh);
    if (sh.sh_offset + sh.sh_size > ko.size()) throw Error("EINVAL", "section past the end of kernel module");
    return sh;
  };
  if (eh.e_shstrndx >= eh.e_shnum) throw Error("EINVAL", "kernel module without section names");
  Elf64_Shdr strtab = section(eh.e_shstrndx);
  std::string_view names = ko.substr(strtab.sh_offset, strtab.sh_size);
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh = section(i);
    if (sh.sh_name >= names.size()) continue;
    std::string_view sname = names.substr(sh.sh_name);
    sname = sname.substr(0, sname.find('\0'));
    if (sname != ".modinfo") continue;
    ModInfo info;
    std::string_view data = ko.substr(sh.sh_offset, sh.sh_size);
    while (!data.empty()) {
      size_t end = data.find('\0');
      std::string_view kv = data.substr(0, end);
      data.remove_prefix(end == std::string_view::npos ? data.size() : end + 1);
      if (kv.substr(0, 5) == "name=") info.name = canonical_module_name(kv.substr(5));
      if (kv.substr(0, 8) == "depends=") {
        std::string_view deps = kv.substr(8);
        while (!deps.empty()) {
          size_t comma = deps.find(',');
          std::string_view d = deps.substr(0, comma);
          if (!d.empty()) info.depends.push_back(canonical_module_name(d));
          deps.remove_prefix(comma == std::string_view::npos ? deps.size() : comma + 1);
        }
      }
    }
    return info;
  }
  throw Error("EINVAL", "kernel module has no .modinfo section");
}

}  // namespace banger::kernel
