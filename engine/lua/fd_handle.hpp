#pragma once
// banger.priv.fd: an open descriptor handed to Lua (a tap queue from the root
// helper), closed by h:close(), <close> or the collector. Lua code only
// passes it on (to vmm.launch); it never reads or writes through it.
#include "engine/core/unique_fd.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {

struct OwnedFd {
  UniqueFd fd;
};

template <>
struct HandleTraits<OwnedFd> {
  static constexpr const char* name = "banger.priv.fd";
  static std::string describe(const OwnedFd& f) { return "fd " + std::to_string(f.fd.get()); }
};

void push_fd(lua_State* L, UniqueFd fd);
// The descriptor behind the handle at idx (still owned by the handle).
int check_fd(lua_State* L, int idx);

}  // namespace banger::lua
