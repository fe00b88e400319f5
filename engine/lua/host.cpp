#include "engine/lua/host.hpp"

#include <csignal>
#include <cstdio>
#include <unistd.h>

#include "engine/core/cancel.hpp"
#include "engine/core/install_dirs.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/precompiled.hpp"

namespace banger::lua {
namespace {

lua_State* interrupt_target = nullptr;
volatile sig_atomic_t interrupt_count = 0;
constexpr int kInterruptMask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT;

// The exit status is 128 + the signal, as a shell reports a process killed
// by it: 130 for SIGINT, 143 for SIGTERM (docs/architecture.md, "Signals").
// Inside a native (one of its Lua callbacks, e.g. a streaming exec's
// output) the hook stays armed and waits: the native sees the cancel flag
// itself, finishes its protocol (passing the signal to a guest command,
// draining its output) and returns; the next instruction after it raises.
// An interruptible callback (a progress printer, a stage hook) gets a grace
// of instructions to finish, then the interrupt is raised in it.
void raise_interrupted(lua_State* L, lua_Debug*) {
  if (interrupt_waits()) return;
  lua_sethook(L, nullptr, 0, 0);
  push_interrupt_error(L);
  lua_error(L);
}

void on_interrupt(int sig) {
  // A cleared cancellation (sys.clear_interrupt) starts the count anew.
  if (!cancel::requested()) interrupt_count = 0;
  cancel::request(sig);
  interrupt_count = interrupt_count + 1;
  if (interrupt_count >= 3) {
    // The user insists: skip the remaining cleanups.
    static const char msg[] = "\nbanger: interrupted again, exiting without cleanup\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(cancel::exit_status());
  }
  if (interrupt_target) {
    lua_sethook(interrupt_target, raise_interrupted, kInterruptMask, 1);
  }
}

int traceback(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

}  // namespace

void push_interrupt_error(lua_State* L) {
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "ECANCELED");
  lua_setfield(L, -2, "code");
  if (cancel::signal() == SIGTERM) {
    lua_pushliteral(L, "terminated");
  } else {
    lua_pushliteral(L, "interrupted");
  }
  lua_setfield(L, -2, "message");
  lua_pushinteger(L, cancel::exit_status());
  lua_setfield(L, -2, "exit");
  if (luaL_getmetatable(L, "banger.error") == LUA_TTABLE) {
    lua_setmetatable(L, -2);
  } else {
    lua_pop(L, 1);
  }
}

void rearm_interrupt(lua_State* L) noexcept {
  if (!interrupt_target || !cancel::requested()) return;
  lua_sethook(L, raise_interrupted, kInterruptMask, 1);
  if (L != interrupt_target) lua_sethook(interrupt_target, raise_interrupted, kInterruptMask, 1);
}

Host::Host() : L_(luaL_newstate()) {
  if (!L_) throw Error("ENOMEM", "cannot create the Lua state");
  luaL_openlibs(L_);

  const std::string dir = install::lua_dir();
  lua_getglobal(L_, "package");
  std::string path = dir + "/stdlib/?.lua;" + dir + "/stdlib/?/init.lua";
  lua_pushstring(L_, path.c_str());
  lua_setfield(L_, -2, "path");
  lua_pushliteral(L_, "");
  lua_setfield(L_, -2, "cpath");
  lua_getfield(L_, -1, "preload");
  for (const ModuleEntry& m : module_registry()) {
    lua_pushcfunction(L_, m.open);
    lua_setfield(L_, -2, (std::string("banger.native.") + m.name).c_str());
  }
  lua_pop(L_, 2);
  precompiled::install_searcher(L_);
}

Host::~Host() {
  if (interrupt_target == L_) interrupt_target = nullptr;
  lua_close(L_);
}

void Host::install_interrupt_handler() {
  interrupt_target = L_;
  struct sigaction sa{};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int Host::run_main(const std::vector<std::string>& args) {
  lua_pushcfunction(L_, traceback);
  int msgh = lua_gettop(L_);
  lua_getglobal(L_, "require");
  lua_pushliteral(L_, "banger.main");
  if (lua_pcall(L_, 1, 1, msgh) != LUA_OK) {
    std::fprintf(stderr, "banger: cannot load the stdlib from %s: %s\n", install::lua_dir().c_str(),
                 lua_tostring(L_, -1));
    return 70;  // EX_SOFTWARE
  }
  lua_getfield(L_, -1, "run");
  lua_createtable(L_, static_cast<int>(args.size()), 0);
  for (size_t i = 0; i < args.size(); ++i) {
    lua_pushlstring(L_, args[i].data(), args[i].size());
    lua_rawseti(L_, -2, static_cast<lua_Integer>(i + 1));
  }
  if (lua_pcall(L_, 1, 1, msgh) != LUA_OK) {
    std::fprintf(stderr, "banger: %s\n", lua_tostring(L_, -1));
    return 70;
  }
  int code = lua_isinteger(L_, -1) ? static_cast<int>(lua_tointeger(L_, -1)) : 0;
  lua_settop(L_, 0);
  return code;
}

}  // namespace banger::lua
