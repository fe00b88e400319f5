#include "engine/lua/json_value.hpp"

#include <cmath>
#include <string>

#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

constexpr int kMaxDepth = 200;
char null_tag;

bool marked_array(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_getfield(L, -1, "__jsontype");
  bool is = lua_type(L, -1) == LUA_TSTRING && std::string_view(lua_tostring(L, -1)) == "array";
  lua_pop(L, 2);
  return is;
}

// Keys are exactly 1..n (n > 0).
bool sequence_length(lua_State* L, int idx, lua_Integer& n) {
  n = 0;
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
      lua_pop(L, 1);
      return false;
    }
    n = std::max(n, lua_tointeger(L, -1));
    ++count;
  }
  return count > 0 && count == n;
}

nlohmann::json convert(lua_State* L, int idx, int depth) {
  if (depth > kMaxDepth) throw Raise("json: nesting too deep (cycle?)");
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) != 0;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) return static_cast<std::int64_t>(lua_tointeger(L, idx));
      if (!std::isfinite(lua_tonumber(L, idx))) throw Raise("json: cannot encode inf or nan");
      return lua_tonumber(L, idx);
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      return std::string(s, len);
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == &null_tag) return nullptr;
      throw Raise("json: cannot encode a light userdata");
    case LUA_TTABLE: {
      lua_Integer n = 0;
      bool array = marked_array(L, idx);
      if (array || sequence_length(L, idx, n)) {
        if (array) n = luaL_len(L, idx);
        nlohmann::json arr = nlohmann::json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_geti(L, idx, i);
          arr.push_back(convert(L, -1, depth + 1));
          lua_pop(L, 1);
        }
        return arr;
      }
      nlohmann::json obj = nlohmann::json::object();
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) {
          key = lua_tostring(L, -2);
        } else if (lua_isinteger(L, -2)) {
          key = std::to_string(lua_tointeger(L, -2));
        } else {
          lua_pop(L, 2);
          throw Raise("json: object keys must be strings or integers");
        }
        obj[key] = convert(L, -1, depth + 1);
        lua_pop(L, 1);
      }
      return obj;
    }
    default: throw Raise(std::string("json: cannot encode a ") + luaL_typename(L, idx));
  }
}

}  // namespace

void* json_null_sentinel() { return &null_tag; }

void push_array_mark(lua_State* L) {
  if (luaL_newmetatable(L, "banger.json.array")) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
}

nlohmann::json to_json(lua_State* L, int idx) { return convert(L, idx, 0); }

void push_json(lua_State* L, const nlohmann::json& j) {
  luaL_checkstack(L, 4, "json: nesting too deep");
  switch (j.type()) {
    case nlohmann::json::value_t::null: lua_pushlightuserdata(L, &null_tag); return;
    case nlohmann::json::value_t::boolean: lua_pushboolean(L, j.get<bool>()); return;
    case nlohmann::json::value_t::number_integer: lua_pushinteger(L, j.get<std::int64_t>()); return;
    case nlohmann::json::value_t::number_unsigned:
      if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        lua_pushnumber(L, static_cast<double>(j.get<std::uint64_t>()));
      } else {
        lua_pushinteger(L, static_cast<lua_Integer>(j.get<std::uint64_t>()));
      }
      return;
    case nlohmann::json::value_t::number_float: lua_pushnumber(L, j.get<double>()); return;
    case nlohmann::json::value_t::string: push_string(L, j.get_ref<const std::string&>()); return;
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      lua_Integer i = 1;
      for (const auto& v : j) {
        push_json(L, v);
        lua_rawseti(L, -2, i++);
      }
      push_array_mark(L);
      lua_setmetatable(L, -2);
      return;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (auto it = j.begin(); it != j.end(); ++it) {
        push_json(L, it.value());
        lua_setfield(L, -2, it.key().c_str());
      }
      return;
    }
    default: lua_pushnil(L); return;
  }
}

}  // namespace banger::lua
