// banger.native.log: structured JSON-lines logging (engine/core/log.hpp).
#include "engine/core/log.hpp"

#include "engine/lua/binding.hpp"
#include "engine/lua/json_value.hpp"

namespace banger::lua {
namespace {

int l_open(lua_State* L) {
  log::open(check_string(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_set_level(lua_State* L) {
  log::set_file_level(log::parse_level(check_string(L, 1)));
  lua_pushboolean(L, 1);
  return 1;
}

// set_stderr(level|nil): mirror records at or above level to stderr.
int l_set_stderr(lua_State* L) {
  auto s = opt_string(L, 1);
  log::set_stderr_level(s ? std::optional(log::parse_level(*s)) : std::nullopt);
  lua_pushboolean(L, 1);
  return 1;
}

// write(level, component, message [, fields])
int l_write(lua_State* L) {
  auto level = log::parse_level(check_string(L, 1));
  std::string component = check_string(L, 2);
  std::string message = check_string(L, 3);
  nlohmann::json fields = lua_isnoneornil(L, 4) ? nlohmann::json::object() : to_json(L, 4);
  log::write(level, component, message, fields);
  return 0;
}

int open_log(lua_State* L) {
  static const luaL_Reg fns[] = {{"open", protect<l_open>},
                                 {"set_level", protect<l_set_level>},
                                 {"set_stderr", protect<l_set_stderr>},
                                 {"write", protect<l_write>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(log, open_log);
}  // namespace banger::lua
