// Where and what a native's argument error is about (see error_context.hpp).
#include "engine/lua/error_context.hpp"

#include <string_view>

namespace banger::lua {

// Searches package.loaded (module functions), then the registry's
// metatables (handle methods), for the running function.
void push_native_name(lua_State* L) {
  lua_Debug ar;
  if (!lua_checkstack(L, 8) || !lua_getstack(L, 0, &ar)) {
    lua_pushnil(L);
    return;
  }
  lua_getinfo(L, "f", &ar);  // the function
  int fn = lua_gettop(L);
  lua_pushnil(L);            // the answer
  int answer = lua_gettop(L);
  // Module functions: package.loaded["banger.native.X"].name.
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  int sources = lua_gettop(L);
  for (int pass = 0; pass < 2 && lua_isnil(L, answer); ++pass) {
    if (pass == 1) {  // handle methods: registry[metatable name].__index.name
      lua_pushvalue(L, LUA_REGISTRYINDEX);
      lua_replace(L, sources);
    }
    if (lua_type(L, sources) != LUA_TTABLE) continue;
    lua_pushnil(L);
    while (lua_isnil(L, answer) && lua_next(L, sources)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE) {
        if (pass == 1) {
          lua_pushliteral(L, "__index");
          lua_rawget(L, -2);
          lua_replace(L, -2);
        }
        if (lua_type(L, -1) == LUA_TTABLE) {
          int t = lua_gettop(L);
          lua_pushnil(L);
          while (lua_next(L, t)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, fn)) {
              std::string_view owner = lua_tostring(L, t - 1);
              if (pass == 0 && owner.starts_with("banger.native.")) owner.remove_prefix(14);
              lua_pushlstring(L, owner.data(), owner.size());
              lua_pushstring(L, pass == 0 ? "." : ":");
              lua_pushvalue(L, -4);
              lua_concat(L, 3);
              lua_replace(L, answer);
              lua_pop(L, 2);
              break;
            }
            lua_pop(L, 1);
          }
        }
      }
      lua_pop(L, 1);
    }
    if (!lua_isnil(L, answer)) lua_pop(L, 1);  // the key lua_next left
  }
  lua_settop(L, answer);
  lua_replace(L, fn);
}

// "file:line:" of the code that called the native, skipping C frames and
// the frames of sources registered in registry["banger.transparent_sources"]
// (errors.wrap's wrappers), so a bad argument points at the user's line.
void push_caller_where(lua_State* L) {
  lua_Debug ar;
  if (!lua_checkstack(L, 4)) {
    lua_pushliteral(L, "");
    return;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "banger.transparent_sources");
  int skip = lua_gettop(L);
  for (int level = 1; lua_getstack(L, level, &ar); ++level) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline <= 0) continue;
    if (lua_type(L, skip) == LUA_TTABLE) {
      lua_pushstring(L, ar.source);
      bool transparent = lua_rawget(L, skip) != LUA_TNIL;
      lua_pop(L, 1);
      if (transparent) continue;
    }
    lua_pop(L, 1);
    lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
    return;
  }
  lua_pop(L, 1);
  lua_pushliteral(L, "");
}

}  // namespace banger::lua
