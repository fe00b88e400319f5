// libFuzzer target: the Lua <-> JSON bridge (engine/lua/json_value.cpp)
// through the real banger.native.json functions, called the way Lua calls
// them (lua_pcall into protect<>), so the error paths are the real ones.
//
// The first byte picks the direction:
//  * even: the rest is a small program that builds a Lua value (nested
//    tables, arrays marked or not, shared and cyclic references, metatables
//    with throwing metamethods, every scalar type), which is encoded;
//  * odd: the rest is a JSON document, which is decoded.
// Whatever the input, nothing may crash; an encoding that succeeds must
// decode, and re-encode to the same text; a cycle must be refused.
#include <lua.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/lua/binding.hpp"

namespace {

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string bytes(std::size_t max) {
    std::size_t len = std::min<std::size_t>(byte() % (max + 1), n);
    std::string s(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return s;
  }
};

int throwing(lua_State* L) { return luaL_error(L, "metamethod ran"); }

// Builds one value on the stack. `open` holds the absolute stack indices of
// the tables under construction (outermost first), so a byte can make a
// cycle by storing one of them inside a deeper one.
// The value at the top, built; returns whether a reference to an enclosing
// table was stored (a candidate cycle; has_cycle() decides).
bool build(lua_State* L, Input& in, std::vector<int>& open, int budget) {
  if (!lua_checkstack(L, 8)) std::abort();
  bool cycle = false;
  switch (in.byte() % 12) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, in.byte() & 1); break;
    case 2: {
      lua_Integer v = 0;
      for (int i = 0; i < 8; ++i) v = (v << 8) | in.byte();
      lua_pushinteger(L, v);
      break;
    }
    case 3: {
      double d = 0;
      std::uint64_t bits = 0;
      for (int i = 0; i < 8; ++i) bits = (bits << 8) | in.byte();
      std::memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case 4: {
      std::string s = in.bytes(16);
      lua_pushlstring(L, s.data(), s.size());
      break;
    }
    case 5: lua_pushlightuserdata(L, &in); break;
    case 6:
      if (!open.empty()) {  // a reference to a table being built: a cycle
        lua_pushvalue(L, open[in.byte() % open.size()]);
        cycle = true;
      } else {
        lua_pushnil(L);
      }
      break;
    case 7: lua_pushcfunction(L, throwing); break;
    default: {  // a table: fields and elements from the following bytes
      lua_newtable(L);
      int t = lua_gettop(L);
      std::uint8_t kind = in.byte();
      if (kind & 1) {  // the array mark, as json.array() sets it
        luaL_newmetatable(L, "banger.json.array");
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__jsontype");
        lua_setmetatable(L, t);
      } else if (kind & 2) {  // metamethods that must never run
        lua_newtable(L);
        for (const char* mm : {"__index", "__newindex", "__len", "__pairs"}) {
          lua_pushcfunction(L, throwing);
          lua_setfield(L, -2, mm);
        }
        lua_setmetatable(L, t);
      }
      open.push_back(t);
      int count = in.byte() % 6;
      for (int i = 0; i < count && !in.empty() && budget > 0; ++i) {
        std::uint8_t key = in.byte();
        if (key % 3 == 0) {
          std::string k = in.bytes(8);
          lua_pushlstring(L, k.data(), k.size());
        } else if (key % 3 == 1) {
          lua_pushinteger(L, 1 + key % 5);
        } else {
          lua_pushnumber(L, 0.5 + key);
        }
        cycle = build(L, in, open, budget - 1) || cycle;
        if (lua_isnil(L, -1) || lua_isnil(L, -2)) {
          lua_pop(L, 2);
        } else {
          lua_rawset(L, t);
        }
      }
      open.pop_back();
      break;
    }
  }
  return cycle;
}

bool marked(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_pushliteral(L, "__jsontype");
  bool is = lua_rawget(L, -2) == LUA_TSTRING;
  lua_pop(L, 2);
  return is;
}

// An independent cycle check over what the encoder visits (raw DFS; of a
// marked array only 1..#t, so t = {[2] = t} marked is not a cycle there).
bool has_cycle(lua_State* L, int idx, std::vector<const void*>& path) {
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  const void* self = lua_topointer(L, idx);
  for (const void* p : path) {
    if (p == self) return true;
  }
  if (!lua_checkstack(L, 4)) std::abort();
  path.push_back(self);
  bool found = false;
  if (marked(L, idx)) {
    auto n = static_cast<lua_Integer>(lua_rawlen(L, idx));
    for (lua_Integer i = 1; i <= n && !found; ++i) {
      lua_rawgeti(L, idx, i);
      found = has_cycle(L, lua_gettop(L), path);
      lua_pop(L, 1);
    }
  } else {
    lua_pushnil(L);
    while (!found && lua_next(L, idx)) {
      found = has_cycle(L, lua_gettop(L), path);
      lua_pop(L, 1);
    }
    if (found) lua_pop(L, 1);  // the key lua_next left
  }
  path.pop_back();
  return found;
}

// Calls fn(value at idx) under lua_pcall: nullopt-like false on a raised
// error, else the results (string or nil, msg) are left on the stack.
bool call(lua_State* L, int fn, int idx) {
  lua_pushvalue(L, fn);
  lua_pushvalue(L, idx);
  return lua_pcall(L, 1, 2, 0) == LUA_OK;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  for (const auto& m : banger::lua::module_registry()) {
    if (std::string(m.name) == "json") {
      luaL_requiref(L, "banger.native.json", m.open, 0);
      break;
    }
  }
  if (!lua_istable(L, -1)) std::abort();
  lua_getfield(L, -1, "encode");
  int encode = lua_gettop(L);
  lua_getfield(L, -2, "decode");
  int decode = lua_gettop(L);

  Input in{data + 1, size - 1};
  if ((data[0] & 1) == 0) {
    std::vector<int> open;
    build(L, in, open, 400);
    int value = lua_gettop(L);
    std::vector<const void*> path;
    bool cycle = has_cycle(L, value, path);
    // (A raised error is fine: which refusal comes first depends on the
    // order of the fields.)
    if (call(L, encode, value)) {
      if (lua_type(L, -2) == LUA_TSTRING) {
        if (cycle) std::abort();  // a cycle must never encode
        std::size_t len = 0;
        const char* s = lua_tolstring(L, -2, &len);
        std::string text(s, len);
        lua_settop(L, value);
        lua_pushlstring(L, text.data(), text.size());
        int doc = lua_gettop(L);
        if (!call(L, decode, doc) || lua_isnil(L, -2)) std::abort();  // our own output must decode
        int back = lua_gettop(L) - 1;
        if (!call(L, encode, back) || lua_type(L, -2) != LUA_TSTRING) std::abort();
        s = lua_tolstring(L, -2, &len);
        if (text != std::string_view(s, len)) std::abort();  // and re-encode to the same text
      }
    }
  } else {
    std::string doc(reinterpret_cast<const char*>(in.p), in.n);
    lua_pushlstring(L, doc.data(), doc.size());
    int text = lua_gettop(L);
    if (call(L, decode, text) && !lua_isnil(L, -2)) {
      int value = lua_gettop(L) - 1;
      // A decoded document is plain data: it encodes (strings may be refused
      // as invalid UTF-8, reported as a failure, never a crash).
      if (!call(L, encode, value)) std::abort();
    }
  }
  lua_close(L);
  return 0;
}
