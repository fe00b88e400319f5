#pragma once
// Context for a native's argument error, built after the native's C++ frames
// are gone (protect_impl): like luaL_argerror, but naming the native the way
// a script knows it and pointing at the script's line, past errors.wrap.
// Raw accesses after lua_checkstack only: nothing here raises.
#include <lua.hpp>

namespace banger::lua {

// Pushes "ext4.create" for a module function, "banger.ext4.fs:resize" for a
// handle method, or nil, for the running native (level 0).
void push_native_name(lua_State* L);
// Pushes "file:line: " of the first Lua frame above the native that is not
// in a source listed in registry["banger.transparent_sources"]; "" if none.
void push_caller_where(lua_State* L);

}  // namespace banger::lua
