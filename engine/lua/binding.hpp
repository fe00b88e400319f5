#pragma once
// The binding layer's one convention (docs/architecture.md, "Errors"):
//
//  * Operational failures return `nil, message, code` to Lua. Natives signal
//    them by throwing banger::Error.
//  * Programmer errors (a wrong argument type, a closed handle) raise a Lua
//    error. Natives signal them by throwing lua::Raise.
//
// Lua is compiled as C and raises errors with longjmp, which would skip the
// destructors of live C++ objects. So natives never call luaL_check* or
// lua_error themselves: they use the throwing accessors below, and protect<>
// converts exceptions into Lua results or errors only after every C++ frame
// has unwound.
//
// Handles are full userdata boxes holding a std::unique_ptr<T> under one
// metatable per type (HandleTraits<T>::name). __gc and __close both reset the
// pointer and are safe to call twice; using a closed handle raises.
#include <lua.hpp>

#include <concepts>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/error.hpp"

namespace banger::lua {

class Raise : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void raise_arg(lua_State* L, int idx, std::string_view expected);

// --- positional arguments -------------------------------------------------
std::string check_string(lua_State* L, int idx);
std::optional<std::string> opt_string(lua_State* L, int idx);
lua_Integer check_integer(lua_State* L, int idx);
std::optional<lua_Integer> opt_integer(lua_State* L, int idx);
bool opt_boolean(lua_State* L, int idx, bool fallback);
void check_table(lua_State* L, int idx);
// A sequence of strings, e.g. an argv table.
std::vector<std::string> check_string_list(lua_State* L, int idx);

// --- fields of an options table at idx -----------------------------------------
// An absent or nil options table is no options (every field nullopt); any
// other non-table raises "bad argument #idx (table expected, got ...)".
// Fields are read raw: no metamethod runs (it could raise through our frames).
std::optional<std::string> field_string(lua_State* L, int idx, const char* key);
std::optional<lua_Integer> field_integer(lua_State* L, int idx, const char* key);
std::optional<bool> field_boolean(lua_State* L, int idx, const char* key);
std::optional<std::vector<std::string>> field_string_list(lua_State* L, int idx, const char* key);
// Pushes t[key] when it is a function, nil when absent (always one value).
void push_function_field(lua_State* L, int idx, const char* key);
// Pushes t[key] and returns true when it is a table; false, nothing pushed,
// when absent; raises for any other type.
bool push_table_field(lua_State* L, int idx, const char* key);
// Pushes t[key], whatever it is, and returns its type (lua_getfield without
// metamethods).
int push_raw_field(lua_State* L, int idx, const char* key);
// For each element of the sequence t[key] (absent: none), which must be a
// table: fn(stack index of the element, its position).
template <class Fn>
void for_each_table(lua_State* L, int idx, const char* key, Fn&& fn) {
  if (!push_table_field(L, idx, key)) return;
  int list = lua_gettop(L);
  auto n = static_cast<lua_Integer>(lua_rawlen(L, list));
  for (lua_Integer i = 1; i <= n; ++i) {
    if (lua_rawgeti(L, list, i) != LUA_TTABLE) {
      throw Raise(std::string("bad option '") + key + "' (element " + std::to_string(i) + " must be a table)");
    }
    fn(lua_gettop(L), i);
    lua_settop(L, list);
  }
  lua_pop(L, 1);
}
// A size (engine/core/size.hpp): integer bytes, or a string with a unit
// ("64MiB"); anything else raises, saying why.
std::uint64_t check_size(lua_State* L, int idx);
std::optional<std::uint64_t> opt_size(lua_State* L, int idx);
std::optional<std::uint64_t> field_size(lua_State* L, int idx, const char* key);

// --- integers that must fit a C type ---------------------------------------
// Like luaL_checkinteger plus the range check liolib does by hand: a value
// outside [lo, hi] (by default what T holds) raises instead of wrapping.
[[noreturn]] void raise_range(const std::string& what, lua_Integer v, std::string_view lo, std::string_view hi);

template <std::integral T>
T in_range(const std::string& what, lua_Integer v, T lo, T hi) {
  if (std::cmp_less(v, lo) || std::cmp_greater(v, hi)) raise_range(what, v, std::to_string(lo), std::to_string(hi));
  return static_cast<T>(v);
}

template <std::integral T>
T check_int(lua_State* L, int idx, T lo = std::numeric_limits<T>::min(), T hi = std::numeric_limits<T>::max()) {
  return in_range<T>("bad argument #" + std::to_string(idx), check_integer(L, idx), lo, hi);
}

template <std::integral T>
std::optional<T> opt_int(lua_State* L, int idx, T lo = std::numeric_limits<T>::min(),
                         T hi = std::numeric_limits<T>::max()) {
  if (lua_isnoneornil(L, idx)) return std::nullopt;
  return check_int<T>(L, idx, lo, hi);
}

template <std::integral T>
std::optional<T> field_int(lua_State* L, int idx, const char* key, T lo = std::numeric_limits<T>::min(),
                           T hi = std::numeric_limits<T>::max()) {
  auto v = field_integer(L, idx, key);
  if (!v) return std::nullopt;
  return in_range<T>(std::string("bad option '") + key + "'", *v, lo, hi);
}

// A file mode's permission bits (0..07777).
inline constexpr unsigned kMaxMode = 07777;

// --- results ----------------------------------------------------------------
int push_failure(lua_State* L, const banger::Error& e);  // nil, msg, code -> 3
inline void push_string(lua_State* L, std::string_view s) { lua_pushlstring(L, s.data(), s.size()); }
void set_field(lua_State* L, const char* key, std::string_view value);
void set_field(lua_State* L, const char* key, lua_Integer value);
void set_field_bool(lua_State* L, const char* key, bool value);
void push_string_list(lua_State* L, std::span<const std::string> items);

// Calls F and maps exceptions per the convention above. A Raise becomes
// "file:line: bad argument #N to 'ext4.create' (...)": the position is the
// caller's (errors.wrap's frames skipped), the name the native's.
int protect_impl(lua_State* L, lua_CFunction f);
// Asked by the host's interrupt hook at each Lua instruction once a signal
// arrived (engine/lua/host.cpp): true while it should wait. Inside a native
// it waits, since the native handles the cancellation itself and returns;
// inside an interruptible callback (engine/lua/callback.hpp) it waits only
// for a grace of kCallbackGrace instructions, so a callback finishes its
// line of output but one stuck in a loop is interrupted.
bool interrupt_waits() noexcept;
inline constexpr long kCallbackGrace = 1'000'000;
// While alive, the innermost Lua code is a callback the interrupt may end.
class InterruptibleCallback {
 public:
  InterruptibleCallback() noexcept;
  ~InterruptibleCallback();
  InterruptibleCallback(const InterruptibleCallback&) = delete;
  InterruptibleCallback& operator=(const InterruptibleCallback&) = delete;

 private:
  bool saved_interruptible_;
  long saved_grace_;
};
template <lua_CFunction F>
int protect(lua_State* L) {
  return protect_impl(L, F);
}

// --- handles ----------------------------------------------------------------
template <class T>
struct HandleTraits;  // specialise: static constexpr const char* name; optional describe()

template <class T>
struct Box {
  std::unique_ptr<T> ptr;
};

template <class T>
concept Describable = requires(const T& t) {
  { HandleTraits<T>::describe(t) } -> std::convertible_to<std::string>;
};

template <class T>
concept ExplicitlyClosable = requires(T& t) { t.close(); };

template <class T>
Box<T>* check_box(lua_State* L, int idx) {
  auto* box = static_cast<Box<T>*>(luaL_testudata(L, idx, HandleTraits<T>::name));
  if (!box) raise_arg(L, idx, HandleTraits<T>::name);
  return box;
}

// The live object behind a handle; raises when it has been closed.
template <class T>
T& check_handle(lua_State* L, int idx) {
  Box<T>* box = check_box<T>(L, idx);
  if (!box->ptr) throw Raise(std::string("attempt to use a closed ") + HandleTraits<T>::name);
  return *box->ptr;
}

// Creates the box closed, attaches the metatable, then moves the object in,
// so a failed allocation never leaves a half-made handle behind.
template <class T>
void push_handle(lua_State* L, std::unique_ptr<T> obj) {
  void* mem = lua_newuserdatauv(L, sizeof(Box<T>), 1);
  auto* box = new (mem) Box<T>{};
  luaL_setmetatable(L, HandleTraits<T>::name);
  box->ptr = std::move(obj);
}

namespace detail {
template <class T>
int handle_release(lua_State* L) {
  auto* box = static_cast<Box<T>*>(luaL_testudata(L, 1, HandleTraits<T>::name));
  if (box) {
    box->ptr.reset();
    box->~Box<T>();
    new (box) Box<T>{};
  }
  return 0;
}

// h:close(): an explicit close may report a failure (e.g. a flush that did
// not reach the disk); __gc and __close are best effort via the destructor.
template <class T>
int handle_close(lua_State* L) {
  Box<T>* box = check_box<T>(L, 1);
  if (!box->ptr) {
    lua_pushboolean(L, 1);
    return 1;
  }
  std::unique_ptr<T> obj = std::move(box->ptr);
  if constexpr (ExplicitlyClosable<T>) obj->close();
  obj.reset();
  lua_pushboolean(L, 1);
  return 1;
}

template <class T>
int handle_tostring(lua_State* L) {
  Box<T>* box = check_box<T>(L, 1);
  std::string s = HandleTraits<T>::name;
  if (!box->ptr) {
    s += " (closed)";
  } else if constexpr (Describable<T>) {
    s += " ";
    s += HandleTraits<T>::describe(*box->ptr);
  }
  push_string(L, s);
  return 1;
}
}  // namespace detail

// Registers the metatable for T with the given methods (a luaL_Reg array
// ending in {nullptr, nullptr}); adds close, __gc, __close and __tostring.
template <class T>
void define_handle(lua_State* L, const luaL_Reg* methods) {
  if (luaL_newmetatable(L, HandleTraits<T>::name) == 0) {
    lua_pop(L, 1);
    return;
  }
  static const luaL_Reg base[] = {{"close", protect<detail::handle_close<T>>}, {nullptr, nullptr}};
  luaL_newlib(L, base);
  if (methods) luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, detail::handle_release<T>);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, detail::handle_release<T>);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, protect<detail::handle_tostring<T>>);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
}

// --- module registration ------------------------------------------------------
// Each binding file registers itself; the host puts every module into
// package.preload as "banger.native.<name>".
struct ModuleEntry {
  const char* name;
  lua_CFunction open;
};
std::vector<ModuleEntry>& module_registry();
struct ModuleRegistration {
  ModuleRegistration(const char* name, lua_CFunction open) { module_registry().push_back({name, open}); }
};

}  // namespace banger::lua

#define BANGER_LUA_MODULE(name, open_fn) \
  static const ::banger::lua::ModuleRegistration banger_lua_module_##name{#name, open_fn}
