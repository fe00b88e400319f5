// banger.native.paths: the XDG layout (engine/core/paths.hpp).
#include "engine/core/paths.hpp"

#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

void push_layout(lua_State* L, const paths::Layout& l) {
  lua_createtable(L, 0, 5);
  set_field(L, "config", l.config);
  set_field(L, "state", l.state);
  set_field(L, "cache", l.cache);
  set_field(L, "runtime", l.runtime);
  set_field_bool(L, "runtime_is_fallback", l.runtime_is_fallback);
}

int l_resolve(lua_State* L) {
  push_layout(L, paths::resolve());
  return 1;
}

// Resolves and creates the directories; returns the layout.
int l_ensure(lua_State* L) {
  paths::Layout l = paths::resolve();
  paths::ensure(l);
  push_layout(L, l);
  return 1;
}

int open_paths(lua_State* L) {
  static const luaL_Reg fns[] = {{"resolve", protect<l_resolve>}, {"ensure", protect<l_ensure>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(paths, open_paths);
}  // namespace banger::lua
