// The registry slot that carries a failed callback's error value out of a
// native to protect<> (engine/lua/callback.hpp). Apart from callback.cpp so
// that binding.cpp, which protect<> lives in, links without the host.
#include "engine/lua/callback.hpp"

namespace banger::lua {
namespace {

// registry[&error_slot]: the value the last failed callback raised, false
// when none waits. Assigning to an existing key never allocates.
const char error_slot = 0;

}  // namespace

void ensure_error_slot(lua_State* L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &error_slot) == LUA_TNIL) {
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &error_slot);
  }
  lua_pop(L, 1);
}

void store_callback_error(lua_State* L) { lua_rawsetp(L, LUA_REGISTRYINDEX, &error_slot); }

void push_callback_error(lua_State* L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &error_slot);
  lua_pushboolean(L, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &error_slot);
}

}  // namespace banger::lua
