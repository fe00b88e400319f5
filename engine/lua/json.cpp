// banger.native.json: encode/decode through nlohmann/json.
#include "engine/lua/binding.hpp"
#include "engine/lua/json_value.hpp"

namespace banger::lua {
namespace {

// encode(value [, {indent = n}]) -> string
int l_encode(lua_State* L) {
  nlohmann::json j = to_json(L, 1);
  int indent = field_int<int>(L, 2, "indent", -1, 64).value_or(-1);
  push_string(L, j.dump(indent, ' ', false, nlohmann::json::error_handler_t::strict));
  return 1;
}

int l_decode(lua_State* L) {
  push_json(L, parse_json(check_string(L, 1)));
  return 1;
}

// array(t) -> t, marked to encode as an array even when empty.
int l_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  check_table(L, 1);
  lua_settop(L, 1);
  push_array_mark(L);
  lua_setmetatable(L, 1);
  return 1;
}

int open_json(lua_State* L) {
  static const luaL_Reg fns[] = {
      {"encode", protect<l_encode>}, {"decode", protect<l_decode>}, {"array", protect<l_array>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, json_null_sentinel());
  lua_setfield(L, -2, "null");
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(json, open_json);
}  // namespace banger::lua
