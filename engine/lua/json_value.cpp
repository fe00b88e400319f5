#include "engine/lua/json_value.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

char null_tag;

// Every Lua access below is raw (no metamethod can run Lua code and raise
// through these C++ frames) and every push is preceded by lua_checkstack,
// which reports instead of raising: nothing here longjmps.
void reserve(lua_State* L, int n) {
  if (!lua_checkstack(L, n)) throw Raise("json: out of Lua stack");
}

bool marked_array(lua_State* L, int idx) {
  reserve(L, 2);
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushliteral(L, "__jsontype");
  lua_rawget(L, -2);
  size_t len = 0;
  const char* s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : nullptr;
  bool is = s && std::string_view(s, len) == "array";
  lua_pop(L, 2);
  return is;
}

// Keys are exactly 1..n (n > 0).
bool sequence_length(lua_State* L, int idx, lua_Integer& n) {
  reserve(L, 3);
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

std::string too_deep() { return "json: nesting deeper than " + std::to_string(kJsonMaxDepth); }

// `path` holds the tables being converted, outermost first: meeting one of
// them again is a cycle (a table shared between branches is not).
nlohmann::json convert(lua_State* L, int idx, std::vector<const void*>& path) {
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
      const void* self = lua_topointer(L, idx);
      if (std::find(path.begin(), path.end(), self) != path.end()) {
        throw Raise("json: cannot encode a cyclic table");
      }
      if (static_cast<int>(path.size()) >= kJsonMaxDepth) throw Raise(too_deep());
      path.push_back(self);
      reserve(L, 4);
      lua_Integer n = 0;
      bool array = marked_array(L, idx);
      nlohmann::json out;
      if (array || sequence_length(L, idx, n)) {
        if (array) n = static_cast<lua_Integer>(lua_rawlen(L, idx));
        out = nlohmann::json::array();
        for (lua_Integer i = 1; i <= n; ++i) {
          lua_rawgeti(L, idx, i);
          out.push_back(convert(L, -1, path));
          lua_pop(L, 1);
        }
      } else {
        out = nlohmann::json::object();
        lua_pushnil(L);
        while (lua_next(L, idx)) {
          std::string key;
          if (lua_type(L, -2) == LUA_TSTRING) {
            size_t len = 0;
            const char* s = lua_tolstring(L, -2, &len);
            key.assign(s, len);
          } else if (lua_isinteger(L, -2)) {
            key = std::to_string(lua_tointeger(L, -2));
          } else {
            lua_pop(L, 2);
            throw Raise("json: object keys must be strings or integers");
          }
          out[key] = convert(L, -1, path);
          lua_pop(L, 1);
        }
      }
      path.pop_back();
      return out;
    }
    default: throw Raise(std::string("json: cannot encode a ") + lua_typename(L, lua_type(L, idx)));
  }
}

void push(lua_State* L, const nlohmann::json& j, int depth) {
  reserve(L, 3);
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
      if (depth >= kJsonMaxDepth) throw Error("EINVAL", too_deep());
      lua_createtable(L, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)), 0);
      lua_Integer i = 1;
      for (const auto& v : j) {
        push(L, v, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      push_array_mark(L);
      lua_setmetatable(L, -2);
      return;
    }
    case nlohmann::json::value_t::object: {
      if (depth >= kJsonMaxDepth) throw Error("EINVAL", too_deep());
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)));
      for (auto it = j.begin(); it != j.end(); ++it) {
        push_string(L, it.key());
        push(L, it.value(), depth + 1);
        lua_rawset(L, -3);
      }
      return;
    }
    default: lua_pushnil(L); return;
  }
}

}  // namespace

void* json_null_sentinel() { return &null_tag; }

void push_array_mark(lua_State* L) {
  reserve(L, 2);
  if (luaL_newmetatable(L, "banger.json.array")) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
}

nlohmann::json to_json(lua_State* L, int idx) {
  std::vector<const void*> path;
  return convert(L, idx, path);
}

void push_json(lua_State* L, const nlohmann::json& j) {
  int top = lua_gettop(L);
  try {
    push(L, j, 0);
  } catch (...) {
    lua_settop(L, top);
    throw;
  }
}

nlohmann::json parse_json(std::string_view text) {
  // The depth bound applies while parsing, so a deep document costs nothing.
  nlohmann::json::parser_callback_t bounded = [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kJsonMaxDepth) {
      throw Error("EINVAL", too_deep());
    }
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(text, bounded, false);
  if (j.is_discarded()) throw Error("EINVAL", "json: invalid document");
  return j;
}

}  // namespace banger::lua
