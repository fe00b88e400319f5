// banger.native.tools: the host programs banger runs (engine/core/host_tools.hpp).
//   tools.find(name) -> absolute path, or nil, message, "ENOTOOL" (the message
//       names the Debian package to install)
//   tools.package(name) -> Debian package, or nil for a program without one
//   tools.list() -> { {name=, package=}, ... } every program banger knows
//       (package absent when Debian has none)
#include "engine/core/host_tools.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

int l_find(lua_State* L) {
  std::string name = check_string(L, 1);
  std::string path = host_tools::find(name);
  if (path.empty()) return push_failure(L, host_tools::not_found(name));
  push_string(L, path);
  return 1;
}

int l_package(lua_State* L) {
  std::string package = host_tools::package_of(check_string(L, 1));
  if (package.empty()) lua_pushnil(L);
  else push_string(L, package);
  return 1;
}

int l_list(lua_State* L) {
  const auto& table = host_tools::table();
  lua_createtable(L, static_cast<int>(table.size()), 0);
  lua_Integer i = 0;
  for (const auto& [name, package] : table) {
    lua_createtable(L, 0, 2);
    set_field(L, "name", name);
    if (!package.empty()) set_field(L, "package", package);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

int open_tools(lua_State* L) {
  static const luaL_Reg fns[] = {{"find", protect<l_find>},
                                 {"package", protect<l_package>},
                                 {"list", protect<l_list>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(tools, open_tools);
}  // namespace banger::lua
