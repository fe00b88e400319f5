// banger.native.priv: the privileged operations (engine/priv/ops.hpp),
// performed in this process (call; only meaningful as root) or by the root
// helper (call_helper). The stdlib (banger.priv) decides which.
#include <unistd.h>

#include "engine/lua/binding.hpp"
#include "engine/lua/fd_handle.hpp"
#include "engine/lua/json_value.hpp"
#include "engine/priv/client.hpp"
#include "engine/priv/ops.hpp"

namespace banger::lua {
namespace {

// Pushes result[, fd handle]: operations that hand over a descriptor
// (open_tap) return it as a second value.
int push_result(lua_State* L, const nlohmann::json& value, UniqueFd fd) {
  push_json(L, value);
  if (!fd) return 1;
  push_fd(L, std::move(fd));
  return 2;
}

// priv.call(op, params) -> result table[, fd]
int l_call(lua_State* L) {
  auto op = check_string(L, 1);
  nlohmann::json params = lua_isnoneornil(L, 2) ? nlohmann::json::object() : to_json(L, 2);
  if (params.is_array() && params.empty()) params = nlohmann::json::object();
  priv::Caller caller{::getuid(), ::getgid()};
  priv::Result r = priv::execute(op, params, caller);
  return push_result(L, r.value, std::move(r.fd));
}

// priv.call_helper(socket, op, params) -> result table[, fd], from the root helper
int l_call_helper(lua_State* L) {
  auto socket = check_string(L, 1);
  auto op = check_string(L, 2);
  nlohmann::json params = lua_isnoneornil(L, 3) ? nlohmann::json::object() : to_json(L, 3);
  if (params.is_array() && params.empty()) params = nlohmann::json::object();
  UniqueFd fd;
  auto value = priv::call_helper(socket, op, params, &fd);
  return push_result(L, value, std::move(fd));
}

// priv.operations() -> { {name=, gate=}, ... }
int l_operations(lua_State* L) {
  const auto& ops = priv::operations();
  lua_createtable(L, static_cast<int>(ops.size()), 0);
  int i = 0;
  for (const auto& o : ops) {
    lua_createtable(L, 0, 2);
    push_string(L, o.name);
    lua_setfield(L, -2, "name");
    push_string(L, o.gate);
    lua_setfield(L, -2, "gate");
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

int open_priv(lua_State* L) {
  static const luaL_Reg fns[] = {
      {"call", protect<l_call>}, {"call_helper", protect<l_call_helper>}, {"operations", protect<l_operations>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(priv, open_priv);
}  // namespace banger::lua
