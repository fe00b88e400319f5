// banger.native.units: the one size parser (engine/core/size.hpp), for
// banger.units and config's rules.
//   units.parse_size(v) -> bytes, or nil, reason, "EINVAL"
//       v: integer bytes, or a string with a binary unit ("64MiB", "1.5G", "4096B")
//   units.max_size -> the largest size accepted, in bytes
#include "engine/core/size.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

int l_parse_size(lua_State* L) {
  std::uint64_t bytes = 0;
  int integral = 0;
  lua_Integer n = lua_type(L, 1) == LUA_TNUMBER ? lua_tointegerx(L, 1, &integral) : 0;
  if (lua_type(L, 1) == LUA_TSTRING) {
    bytes = size::parse(check_string(L, 1));
  } else if (integral) {
    bytes = size::check_bytes(n);
  } else {
    throw Error("EINVAL", std::string("expected a size such as \"2GiB\" or a number of bytes, got ") +
                              (lua_type(L, 1) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, 1)));
  }
  lua_pushinteger(L, static_cast<lua_Integer>(bytes));
  return 1;
}

int open_units(lua_State* L) {
  static const luaL_Reg fns[] = {{"parse_size", protect<l_parse_size>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_pushinteger(L, static_cast<lua_Integer>(size::kMaxSize));
  lua_setfield(L, -2, "max_size");
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(units, open_units);
}  // namespace banger::lua
