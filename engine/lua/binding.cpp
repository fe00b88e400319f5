#include "engine/lua/binding.hpp"

#include <new>
#include <system_error>

#include "engine/core/size.hpp"
#include "engine/lua/callback.hpp"
#include "engine/lua/error_context.hpp"

namespace banger::lua {

std::vector<ModuleEntry>& module_registry() {
  static std::vector<ModuleEntry> modules;
  return modules;
}

void raise_arg(lua_State* L, int idx, std::string_view expected) {
  // Like luaL_typeerror: a handle is named by its metatable's __name.
  std::string got = luaL_typename(L, idx);
  if (lua_checkstack(L, 2) && lua_getmetatable(L, idx)) {
    lua_pushliteral(L, "__name");
    if (lua_rawget(L, -2) == LUA_TSTRING) got = lua_tostring(L, -1);
    lua_pop(L, 2);
  }
  throw Raise("bad argument #" + std::to_string(idx) + " (" + std::string(expected) + " expected, got " + got + ")");
}

std::string check_string(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) raise_arg(L, idx, "string");
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  return std::string(s, len);
}

std::optional<std::string> opt_string(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return std::nullopt;
  return check_string(L, idx);
}

lua_Integer check_integer(lua_State* L, int idx) {
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, idx, &ok);
  if (!ok || lua_type(L, idx) != LUA_TNUMBER) raise_arg(L, idx, "integer");
  return v;
}

std::optional<lua_Integer> opt_integer(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return std::nullopt;
  return check_integer(L, idx);
}

bool opt_boolean(lua_State* L, int idx, bool fallback) {
  if (lua_isnoneornil(L, idx)) return fallback;
  if (lua_type(L, idx) != LUA_TBOOLEAN) raise_arg(L, idx, "boolean");
  return lua_toboolean(L, idx) != 0;
}

void check_table(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) raise_arg(L, idx, "table");
}

std::vector<std::string> check_string_list(lua_State* L, int idx) {
  check_table(L, idx);
  if (!lua_checkstack(L, 2)) throw Raise("stack overflow");
  std::vector<std::string> out;
  // Raw: a metamethod could raise, and its longjmp would skip our frames.
  auto n = static_cast<lua_Integer>(lua_rawlen(L, idx));
  out.reserve(static_cast<size_t>(n));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      throw Raise("bad argument #" + std::to_string(idx) + " (element " + std::to_string(i) + " must be a string)");
    }
    size_t len = 0;
    const char* s = lua_tolstring(L, -1, &len);
    out.emplace_back(s, len);
    lua_pop(L, 1);
  }
  return out;
}

void raise_range(const std::string& what, lua_Integer v, std::string_view lo, std::string_view hi) {
  throw Raise(what + " (" + std::to_string(v) + " out of range " + std::string(lo) + ".." + std::string(hi) + ")");
}

namespace {
// Pushes t[key] and checks its type; returns false (stack unchanged) for nil
// and for an absent options table.
bool push_field(lua_State* L, int idx, const char* key, int type, const char* expected) {
  if (lua_isnoneornil(L, idx)) return false;
  if (lua_type(L, idx) != LUA_TTABLE) raise_arg(L, idx, "table");
  if (!lua_checkstack(L, 2)) throw Raise("stack overflow");
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  int t = lua_rawget(L, idx);  // raw: no metamethod may raise through our frames
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return false;
  }
  if (t != type) {
    std::string got = luaL_typename(L, -1);
    lua_pop(L, 1);
    throw Raise(std::string("bad option '") + key + "' (" + expected + " expected, got " + got + ")");
  }
  return true;
}
}  // namespace

std::optional<std::string> field_string(lua_State* L, int idx, const char* key) {
  if (!push_field(L, idx, key, LUA_TSTRING, "string")) return std::nullopt;
  size_t len = 0;
  const char* s = lua_tolstring(L, -1, &len);
  std::string out(s, len);
  lua_pop(L, 1);
  return out;
}

std::optional<lua_Integer> field_integer(lua_State* L, int idx, const char* key) {
  if (!push_field(L, idx, key, LUA_TNUMBER, "integer")) return std::nullopt;
  int ok = 0;
  lua_Integer v = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  if (!ok) throw Raise(std::string("bad option '") + key + "' (integer expected, got a fraction)");
  return v;
}

std::optional<bool> field_boolean(lua_State* L, int idx, const char* key) {
  if (!push_field(L, idx, key, LUA_TBOOLEAN, "boolean")) return std::nullopt;
  bool v = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  return v;
}

std::optional<std::vector<std::string>> field_string_list(lua_State* L, int idx, const char* key) {
  if (!push_field(L, idx, key, LUA_TTABLE, "table")) return std::nullopt;
  try {
    auto v = check_string_list(L, lua_gettop(L));
    lua_pop(L, 1);
    return v;
  } catch (...) {
    lua_pop(L, 1);
    throw;
  }
}

void push_function_field(lua_State* L, int idx, const char* key) {
  if (!push_field(L, idx, key, LUA_TFUNCTION, "function")) lua_pushnil(L);
}

bool push_table_field(lua_State* L, int idx, const char* key) { return push_field(L, idx, key, LUA_TTABLE, "table"); }

int push_raw_field(lua_State* L, int idx, const char* key) {
  if (!lua_checkstack(L, 2)) throw Raise("stack overflow");
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  return lua_rawget(L, idx);
}

namespace {
std::uint64_t size_value(lua_State* L, int idx, const std::string& what) {
  try {
    if (lua_type(L, idx) == LUA_TSTRING) return size::parse(lua_tostring(L, idx));
    int ok = 0;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (lua_type(L, idx) == LUA_TNUMBER && ok) return size::check_bytes(v);
  } catch (const Error& e) {
    throw Raise(what + " (" + e.what() + ")");
  }
  throw Raise(what + " (a size expected: bytes or a string such as \"64MiB\", got " +
              (lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, idx)) + ")");
}
}  // namespace

std::uint64_t check_size(lua_State* L, int idx) { return size_value(L, idx, "bad argument #" + std::to_string(idx)); }

std::optional<std::uint64_t> opt_size(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return std::nullopt;
  return check_size(L, idx);
}

std::optional<std::uint64_t> field_size(lua_State* L, int idx, const char* key) {
  if (lua_isnoneornil(L, idx)) return std::nullopt;
  if (lua_type(L, idx) != LUA_TTABLE) raise_arg(L, idx, "table");
  if (!lua_checkstack(L, 2)) throw Raise("stack overflow");
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  lua_rawget(L, idx);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return std::nullopt;
  }
  try {
    auto v = size_value(L, lua_gettop(L), std::string("bad option '") + key + "'");
    lua_pop(L, 1);
    return v;
  } catch (...) {
    lua_pop(L, 1);
    throw;
  }
}

int push_failure(lua_State* L, const banger::Error& e) {
  lua_pushnil(L);
  lua_pushstring(L, e.what());
  lua_pushstring(L, e.code().c_str());
  return 3;
}

void set_field(lua_State* L, const char* key, std::string_view value) {
  push_string(L, value);
  lua_setfield(L, -2, key);
}

void set_field(lua_State* L, const char* key, lua_Integer value) {
  lua_pushinteger(L, value);
  lua_setfield(L, -2, key);
}

void set_field_bool(lua_State* L, const char* key, bool value) {
  lua_pushboolean(L, value);
  lua_setfield(L, -2, key);
}

void push_string_list(lua_State* L, std::span<const std::string> items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  lua_Integer i = 1;
  for (const auto& s : items) {
    push_string(L, s);
    lua_rawseti(L, -2, i++);
  }
}

namespace {

// Lua runs on one thread.
int native_depth = 0;
bool interruptible = false;  // the innermost Lua code is an interruptible callback
long grace_left = 0;         // its instructions left once a signal arrived

}  // namespace

bool interrupt_waits() noexcept {
  if (native_depth == 0) return false;
  if (!interruptible) return true;
  return --grace_left > 0;
}

InterruptibleCallback::InterruptibleCallback() noexcept
    : saved_interruptible_(interruptible), saved_grace_(grace_left) {
  interruptible = true;
  grace_left = kCallbackGrace;
}

InterruptibleCallback::~InterruptibleCallback() {
  interruptible = saved_interruptible_;
  grace_left = saved_grace_;
}

namespace {
// std::system_error (std::filesystem's errors among them) carries an errno
// in the generic and system categories: report its name, like Error::sys.
std::string system_error_code(const std::system_error& e) {
  const std::error_category& cat = e.code().category();
  if (cat == std::generic_category() || cat == std::system_category()) return errno_name(e.code().value());
  return "EINTERNAL";
}
}  // namespace

int protect_impl(lua_State* L, lua_CFunction f) {
  // Only plain data survives the try block; lua_error runs after every C++
  // frame of the native has been destroyed. The stack is emptied first: the
  // native may have used the room Lua guarantees.
  bool oom = false;
  bool reraise = false;  // a callback's error, re-raised as it was
  ensure_error_slot(L);
  {
    // Restored, not decremented: should a Lua error ever jump over a nested
    // native, the outer one still leaves the count as it found it.
    struct Depth {
      int saved = native_depth;
      bool saved_interruptible = interruptible;
      Depth() {
        native_depth = saved + 1;
        interruptible = false;
      }
      ~Depth() {
        native_depth = saved;
        interruptible = saved_interruptible;
      }
    } depth;
    try {
      return f(L);
    } catch (const Raise& e) {
      lua_settop(L, 0);
      lua_pushstring(L, e.what());
    } catch (const banger::Error& e) {
      lua_settop(L, 0);
      return push_failure(L, e);
    } catch (const CallbackError&) {
      lua_settop(L, 0);
      push_callback_error(L);
      reraise = true;
    } catch (const std::bad_alloc&) {
      oom = true;
    } catch (const std::system_error& e) {
      lua_settop(L, 0);
      return push_failure(L, banger::Error(system_error_code(e), e.what()));
    } catch (const std::exception& e) {
      lua_settop(L, 0);
      return push_failure(L, banger::Error("EINTERNAL", std::string("internal error: ") + e.what()));
    }
  }
  if (reraise) return lua_error(L);
  if (oom) {
    lua_settop(L, 0);
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  // message -> "where: bad argument #N to 'name' (...)", like luaL_argerror.
  push_native_name(L);
  push_caller_where(L);
  lua_insert(L, 1);  // where, message, name
  std::string_view msg = lua_tostring(L, 2);
  if (lua_isstring(L, 3) && msg.starts_with("bad argument #")) {
    size_t cut = msg.find(' ', 14);
    if (cut != std::string_view::npos) {
      lua_pushlstring(L, msg.data(), cut);
      lua_pushliteral(L, " to '");
      lua_pushvalue(L, 3);
      lua_pushliteral(L, "'");
      lua_pushstring(L, msg.data() + cut);
      lua_concat(L, 5);
      lua_replace(L, 2);
    }
  }
  lua_settop(L, 2);
  lua_concat(L, 2);
  return lua_error(L);
}

}  // namespace banger::lua
