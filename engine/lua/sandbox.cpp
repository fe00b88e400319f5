// banger.native.sandbox: evaluating a data file (config.lua, a project's
// banger.lua) so that nothing in it can reach the host. The chunk runs in a
// Lua state of its own with no libraries at all (not even the string
// metatable, so no ("x"):rep(1e12)), a memory cap and an instruction budget;
// only data (tables, strings, numbers, booleans) is copied back into
// banger's state. Functions are not copied: their key paths are reported, so
// the caller can tell that the file holds code (a provision step) and ask
// for trust before evaluating it for real (docs/security.md).
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

constexpr size_t kDefaultMemory = 16u << 20;         // 16 MiB
constexpr lua_Integer kDefaultInstructions = 10'000'000;
constexpr int kHookEvery = 1000;                     // instructions per count hook
constexpr int kMaxDepth = 32;

struct Budget {
  size_t used = 0;
  size_t memory_limit = kDefaultMemory;
  lua_Integer hooks_left = kDefaultInstructions / kHookEvery;
};

// lua_Alloc with a ceiling: returning NULL makes Lua raise "not enough memory"
// inside the sandbox, never in banger's own state.
void* capped_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* b = static_cast<Budget*>(ud);
  size_t old = ptr ? osize : 0;  // for a new block, osize encodes its type
  if (nsize == 0) {
    std::free(ptr);
    b->used -= old;
    return nullptr;
  }
  if (nsize > old && b->used + (nsize - old) > b->memory_limit) return nullptr;
  void* p = std::realloc(ptr, nsize);
  if (p) b->used = b->used - old + nsize;
  return p;
}

// Runs inside the sandbox's own protected call: luaL_error unwinds only
// Lua frames of that state.
void count_hook(lua_State* S, lua_Debug*) {
  void* ud = nullptr;
  lua_getallocf(S, &ud);
  if (--static_cast<Budget*>(ud)->hooks_left <= 0) luaL_error(S, "instruction limit exceeded");
}

// "@/path/config.lua" -> "/path/config.lua", as Lua shows chunk names.
std::string shown(const std::string& chunkname) {
  return !chunkname.empty() && (chunkname[0] == '@' || chunkname[0] == '=') ? chunkname.substr(1) : chunkname;
}

struct StateCloser {
  void operator()(lua_State* S) const { lua_close(S); }
};

// Copies a value from the sandbox (S) into banger's state (L).
class Copier {
 public:
  Copier(lua_State* S, lua_State* L) : S_(S), L_(L) {}

  void value(int sidx, const std::string& path, int depth) {
    sidx = lua_absindex(S_, sidx);
    if (!lua_checkstack(L_, 4) || !lua_checkstack(S_, 4)) throw Error("ENOMEM", path + ": out of Lua stack");
    switch (lua_type(S_, sidx)) {
      case LUA_TNIL:
        lua_pushnil(L_);
        return;
      case LUA_TBOOLEAN:
        lua_pushboolean(L_, lua_toboolean(S_, sidx));
        return;
      case LUA_TNUMBER:
        if (lua_isinteger(S_, sidx)) {
          lua_pushinteger(L_, lua_tointeger(S_, sidx));
        } else {
          lua_pushnumber(L_, lua_tonumber(S_, sidx));
        }
        return;
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(S_, sidx, &n);
        lua_pushlstring(L_, s, n);
        return;
      }
      case LUA_TTABLE:
        table(sidx, path, depth);
        return;
      default:
        throw Error("EINVAL", where(path) + "a " + lua_typename(S_, lua_type(S_, sidx)) + " is not data");
    }
  }

  std::vector<std::string> functions;

 private:
  static std::string where(const std::string& path) { return path.empty() ? "" : path + ": "; }

  void table(int sidx, const std::string& path, int depth) {
    if (depth >= kMaxDepth) throw Error("EINVAL", where(path) + "tables nested more than 32 deep");
    const void* id = lua_topointer(S_, sidx);
    for (const void* open : open_) {
      if (open == id) throw Error("EINVAL", where(path) + "a table that contains itself");
    }
    open_.push_back(id);
    lua_newtable(L_);
    lua_pushnil(S_);
    while (lua_next(S_, sidx) != 0) {
      std::string child;
      if (lua_type(S_, -2) == LUA_TSTRING) {
        child = path.empty() ? lua_tostring(S_, -2) : path + "." + lua_tostring(S_, -2);
        lua_pushvalue(S_, -2);
        size_t n = 0;
        const char* k = lua_tolstring(S_, -1, &n);
        lua_pushlstring(L_, k, n);
        lua_pop(S_, 1);
      } else if (lua_isinteger(S_, -2)) {
        child = path + "[" + std::to_string(lua_tointeger(S_, -2)) + "]";
        lua_pushinteger(L_, lua_tointeger(S_, -2));
      } else {
        throw Error("EINVAL", where(path) + "keys must be names or integers, found a " +
                                  lua_typename(S_, lua_type(S_, -2)));
      }
      if (lua_type(S_, -1) == LUA_TFUNCTION) {
        functions.push_back(child);
        lua_pop(L_, 1);  // the key
      } else {
        value(-1, child, depth + 1);
        lua_rawset(L_, -3);
      }
      lua_pop(S_, 1);
    }
    open_.pop_back();
  }

  lua_State* S_;
  lua_State* L_;
  std::vector<const void*> open_;  // tables being copied: a repeat is a cycle
};

// eval(text, chunkname[, {memory = bytes, instructions = n, globals = bool}])
//   -> value, functions
// `value` is what the chunk returned; with globals = true and a chunk that
// returned nothing, the table of globals it assigned instead. `functions`
// lists the key paths that held functions (not copied).
// Failures: nil, "chunkname:line: message", ESYNTAX | EINVAL | ELIMIT.
int l_eval(lua_State* L) {
  std::string text = check_string(L, 1);
  std::string chunkname = check_string(L, 2);
  Budget budget;
  if (auto m = field_int<size_t>(L, 3, "memory", 65536)) budget.memory_limit = *m;
  if (auto n = field_int<lua_Integer>(L, 3, "instructions", kHookEvery)) budget.hooks_left = *n / kHookEvery;
  bool globals = field_boolean(L, 3, "globals").value_or(false);

  std::unique_ptr<lua_State, StateCloser> sandbox(lua_newstate(capped_alloc, &budget));
  if (!sandbox) throw Error("ENOMEM", "cannot create a sandbox Lua state");
  lua_State* S = sandbox.get();
  lua_sethook(S, count_hook, LUA_MASKCOUNT, kHookEvery);

  int rc = luaL_loadbufferx(S, text.data(), text.size(), chunkname.c_str(), "t");
  if (rc == LUA_OK) rc = lua_pcall(S, 0, 1, 0);
  if (rc != LUA_OK) {
    std::string msg = lua_type(S, -1) == LUA_TSTRING ? lua_tostring(S, -1) : "error object is not a string";
    if (rc == LUA_ERRSYNTAX) throw Error("ESYNTAX", msg);
    if (rc == LUA_ERRMEM) throw Error("ELIMIT", shown(chunkname) + ": uses more than " +
                                                    std::to_string(budget.memory_limit >> 20) + " MiB of memory");
    if (msg.find("instruction limit exceeded") != std::string::npos) throw Error("ELIMIT", msg);
    throw Error("EINVAL", msg);
  }
  lua_sethook(S, nullptr, 0, 0);
  if (globals && lua_isnil(S, -1)) {
    lua_pop(S, 1);
    lua_pushglobaltable(S);
  }
  if (lua_type(S, -1) == LUA_TFUNCTION) throw Error("EINVAL", shown(chunkname) + ": returned a function, not data");
  Copier copier(S, L);
  copier.value(-1, "", 0);
  push_string_list(L, copier.functions);
  return 2;
}

int open_sandbox(lua_State* L) {
  static const luaL_Reg fns[] = {{"eval", protect<l_eval>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(sandbox, open_sandbox);
}  // namespace banger::lua
