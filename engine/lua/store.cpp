// banger.native.store: the SQLite state store (engine/store/db.hpp).
//   store.open(path) -> db handle (migrated to the latest schema)
//   store.open_readonly(path) -> db handle on an existing file, read only,
//     as it is (no create, no migration, 200 ms busy timeout)
//   db:query(sql, ...) -> array of rows keyed by column name
//   db:exec(sql, ...) -> changes, last_insert_id
//   db:exec_script(sql) for several statements (BEGIN/COMMIT included)
// Transactions are policy and live in lua/stdlib/banger/state.lua.
#include "engine/store/db.hpp"

#include "engine/lua/binding.hpp"
#include "engine/lua/json_value.hpp"

namespace banger::lua {
template <>
struct HandleTraits<store::Db> {
  static constexpr const char* name = "banger.store.db";
  static std::string describe(const store::Db& db) { return db.path(); }
};

namespace {

std::vector<store::Value> params_from(lua_State* L, int first) {
  std::vector<store::Value> out;
  int top = lua_gettop(L);
  for (int i = first; i <= top; ++i) {
    switch (lua_type(L, i)) {
      case LUA_TNIL: out.emplace_back(std::monostate{}); break;
      case LUA_TBOOLEAN: out.emplace_back(static_cast<std::int64_t>(lua_toboolean(L, i))); break;
      case LUA_TNUMBER:
        if (lua_isinteger(L, i)) out.emplace_back(static_cast<std::int64_t>(lua_tointeger(L, i)));
        else out.emplace_back(lua_tonumber(L, i));
        break;
      case LUA_TSTRING: {
        size_t len = 0;
        const char* s = lua_tolstring(L, i, &len);
        out.emplace_back(std::string(s, len));
        break;
      }
      case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, i) == json_null_sentinel()) {
          out.emplace_back(std::monostate{});
          break;
        }
        [[fallthrough]];
      default: raise_arg(L, i, "nil, boolean, number or string");
    }
  }
  return out;
}

int l_open(lua_State* L) {
  push_handle(L, store::Db::open(check_string(L, 1)));
  return 1;
}

int l_open_readonly(lua_State* L) {
  push_handle(L, store::Db::open_readonly(check_string(L, 1)));
  return 1;
}

int l_query(lua_State* L) {
  auto& db = check_handle<store::Db>(L, 1);
  std::string sql = check_string(L, 2);
  store::Result r = db.query(sql, params_from(L, 3));
  lua_createtable(L, static_cast<int>(r.rows.size()), 0);
  lua_Integer i = 1;
  for (const auto& row : r.rows) {
    lua_createtable(L, 0, static_cast<int>(row.size()));
    for (size_t c = 0; c < row.size(); ++c) {
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) lua_pushnil(L);
            else if constexpr (std::is_same_v<T, std::int64_t>) lua_pushinteger(L, v);
            else if constexpr (std::is_same_v<T, double>) lua_pushnumber(L, v);
            else push_string(L, v);
          },
          row[c]);
      lua_setfield(L, -2, r.columns[c].c_str());
    }
    lua_rawseti(L, -2, i++);
  }
  push_array_mark(L);
  lua_setmetatable(L, -2);
  return 1;
}

int l_exec(lua_State* L) {
  auto& db = check_handle<store::Db>(L, 1);
  std::string sql = check_string(L, 2);
  store::Result r = db.query(sql, params_from(L, 3));
  lua_pushinteger(L, r.changes);
  lua_pushinteger(L, r.last_insert_id);
  return 2;
}

int l_exec_script(lua_State* L) {
  check_handle<store::Db>(L, 1).exec_script(check_string(L, 2));
  lua_pushboolean(L, 1);
  return 1;
}

int l_schema_version(lua_State* L) {
  lua_pushinteger(L, check_handle<store::Db>(L, 1).schema_version());
  return 1;
}

int open_store(lua_State* L) {
  static const luaL_Reg methods[] = {{"query", protect<l_query>},
                                     {"exec", protect<l_exec>},
                                     {"exec_script", protect<l_exec_script>},
                                     {"schema_version", protect<l_schema_version>},
                                     {nullptr, nullptr}};
  define_handle<store::Db>(L, methods);
  static const luaL_Reg fns[] = {{"open", protect<l_open>},
                                 {"open_readonly", protect<l_open_readonly>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_pushinteger(L, store::latest_schema_version());
  lua_setfield(L, -2, "schema_version");
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(store, open_store);
}  // namespace banger::lua
