#include "engine/lua/callback.hpp"

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/host.hpp"

namespace banger::lua {
namespace {

// Code and message of a raised value, for C++ code that wraps the failure:
// a structured error keeps its code, anything else is ECALLBACK. Raw reads
// after lua_checkstack only: nothing here raises.
CallbackError describe(lua_State* L, int idx) {
  std::string msg = "error in a Lua callback";
  std::string code = "ECALLBACK";
  if (lua_type(L, idx) == LUA_TSTRING) {
    msg = lua_tostring(L, idx);
  } else if (lua_type(L, idx) == LUA_TTABLE && lua_checkstack(L, 2)) {
    lua_pushliteral(L, "message");
    if (lua_rawget(L, idx) == LUA_TSTRING) msg = lua_tostring(L, -1);
    lua_pop(L, 1);
    lua_pushliteral(L, "code");
    if (lua_rawget(L, idx) == LUA_TSTRING) code = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return CallbackError(code, msg);
}

}  // namespace

Callback::Callback(lua_State* L, int idx, Interrupt mode)
    : L_(L), idx_(lua_type(L, idx) == LUA_TFUNCTION ? lua_absindex(L, idx) : 0), mode_(mode) {}

void Callback::reserve(int n) const {
  if (!lua_checkstack(L_, n)) throw Error("ENOMEM", "no Lua stack left for a callback");
}

void Callback::invoke(int nargs, int nresults) const {
  int rc;
  if (mode_ == Interrupt::raise) {
    InterruptibleCallback scope;
    rc = lua_pcall(L_, nargs, nresults, 0);
  } else {
    rc = lua_pcall(L_, nargs, nresults, 0);
  }
  if (rc == LUA_OK) {
    // The callback may have caught the interrupt itself: arm it again so
    // it is raised once the native returns.
    if (cancel::requested()) rearm_interrupt(L_);
    return;
  }
  int top = lua_gettop(L_);
  CallbackError e = describe(L_, top);
  store_callback_error(L_);
  throw e;
}

}  // namespace banger::lua
