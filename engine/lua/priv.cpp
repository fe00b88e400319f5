// banger.native.priv: the privileged operations (engine/priv/ops.hpp),
// performed in this process (call; only meaningful as root) or by the root
// helper (call_helper). The stdlib (banger.priv) decides which.
#include <fcntl.h>
#include <unistd.h>

#include "engine/core/error.hpp"
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

nlohmann::json params_at(lua_State* L, int idx) {
  nlohmann::json params = lua_isnoneornil(L, idx) ? nlohmann::json::object() : to_json(L, idx);
  if (params.is_array() && params.empty()) params = nlohmann::json::object();
  return params;
}

// The descriptors of the list of banger.priv.fd handles at idx (still owned by them).
std::vector<int> fds_at(lua_State* L, int idx) {
  std::vector<int> fds;
  if (lua_isnoneornil(L, idx)) return fds;
  check_table(L, idx);
  for (lua_Integer i = 1; lua_rawgeti(L, idx, i) != LUA_TNIL; ++i) {
    fds.push_back(check_fd(L, lua_gettop(L)));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return fds;
}

// priv.call(op, params [, fds]) -> result table[, fd]
int l_call(lua_State* L) {
  auto op = check_string(L, 1);
  auto params = params_at(L, 2);
  priv::Fds fds;
  for (int fd : fds_at(L, 3)) {
    fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 3));  // the operation owns its copies, as over the socket
    if (!fds.back()) throw Error::last("dup", "descriptor for " + op);
  }
  priv::Caller caller{::getuid(), ::getgid()};
  priv::Result r = priv::execute(op, params, caller, std::move(fds));
  return push_result(L, r.value, std::move(r.fd));
}

// priv.call_helper(socket, op, params [, fds]) -> result table[, fd], from the root helper
int l_call_helper(lua_State* L) {
  auto socket = check_string(L, 1);
  auto op = check_string(L, 2);
  auto params = params_at(L, 3);
  UniqueFd fd;
  auto value = priv::call_helper(socket, op, params, &fd, fds_at(L, 4));
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
