// banger.native.validate: the shared validation gates (engine/priv/validate.hpp).
// Each returns true, or nil, message, "EINVAL".
#include "engine/priv/validate.hpp"

#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

template <void (*V)(std::string_view)>
int string_gate(lua_State* L) {
  V(check_string(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_ipv4(lua_State* L) {
  lua_pushinteger(L, validate::ipv4(check_string(L, 1)));
  return 1;
}

int l_unicast_ipv4(lua_State* L) {
  lua_pushinteger(L, validate::unicast_ipv4(check_string(L, 1)));
  return 1;
}

int l_bridge_address(lua_State* L) {
  lua_pushinteger(L, validate::bridge_address(check_string(L, 1), check_int<long>(L, 2)));
  return 1;
}

int l_root_executable(lua_State* L) {
  validate::root_executable(check_string(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_cidr_prefix(lua_State* L) {
  lua_pushinteger(L, validate::cidr_prefix(check_int<long>(L, 1)));
  return 1;
}

int l_allow_host(lua_State* L) {
  push_string(L, validate::allow_host(check_string(L, 1)));
  return 1;
}

int open_validate(lua_State* L) {
  static const luaL_Reg fns[] = {{"iface_name", protect<string_gate<validate::iface_name>>},
                                 {"bridge_name", protect<string_gate<validate::bridge_name>>},
                                 {"tap_name", protect<string_gate<validate::tap_name>>},
                                 {"vm_name", protect<string_gate<validate::vm_name>>},
                                 {"home_tag", protect<string_gate<validate::home_tag>>},
                                 {"ipv4", protect<l_ipv4>},
                                 {"unicast_ipv4", protect<l_unicast_ipv4>},
                                 {"bridge_address", protect<l_bridge_address>},
                                 {"cidr_prefix", protect<l_cidr_prefix>},
                                 {"root_executable", protect<l_root_executable>},
                                 {"allow_host", protect<l_allow_host>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  push_string(L, validate::kTapPrefix);
  lua_setfield(L, -2, "tap_prefix");
  push_string(L, validate::kHomeMarkPrefix);
  lua_setfield(L, -2, "home_mark_prefix");
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(validate, open_validate);
}  // namespace banger::lua
