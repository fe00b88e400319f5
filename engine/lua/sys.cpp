// banger.native.sys: facts about this process and host, and a cancellable sleep.
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>

#include "engine/core/build_info.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/install_dirs.hpp"
#include "engine/core/sha256.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/host.hpp"

namespace banger::lua {
namespace {

int l_getuid(lua_State* L) {
  lua_pushinteger(L, ::getuid());
  return 1;
}
int l_geteuid(lua_State* L) {
  lua_pushinteger(L, ::geteuid());
  return 1;
}
int l_getgid(lua_State* L) {
  lua_pushinteger(L, ::getgid());
  return 1;
}
int l_getpid(lua_State* L) {
  lua_pushinteger(L, ::getpid());
  return 1;
}
int l_isatty(lua_State* L) {
  lua_pushboolean(L, ::isatty(check_int<int>(L, 1, 0)));
  return 1;
}

int l_hostname(lua_State* L) {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) throw Error::last("gethostname");
  lua_pushstring(L, buf);
  return 1;
}

int l_uname(lua_State* L) {
  struct utsname u {};
  if (::uname(&u) != 0) throw Error::last("uname");
  lua_createtable(L, 0, 3);
  set_field(L, "sysname", u.sysname);
  set_field(L, "release", u.release);
  set_field(L, "machine", u.machine);
  return 1;
}

// Seconds since the epoch, with sub-second precision.
int l_time(lua_State* L) {
  auto d = std::chrono::system_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(d).count());
  return 1;
}

int l_monotonic_ms(lua_State* L) {
  auto d = std::chrono::steady_clock::now().time_since_epoch();
  lua_pushinteger(L, std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  return 1;
}

// Ends at once on SIGINT/SIGTERM; returns nil, "interrupted", "ECANCELED".
int l_sleep_ms(lua_State* L) {
  cancel::sleep_for(std::chrono::milliseconds(check_int<lua_Integer>(L, 1, 0)));
  lua_pushboolean(L, 1);
  return 1;
}

// interrupted() -> false, or true and the exit status that the interrupting
// signal calls for (130 for SIGINT, 143 for SIGTERM).
int l_interrupted(lua_State* L) {
  if (!cancel::requested()) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, 1);
  lua_pushinteger(L, cancel::exit_status());
  return 2;
}

// interrupt_error() -> the structured error an interrupt raises (code
// ECANCELED, message, exit 130 or 143): banger.errors raises it again.
int l_interrupt_error(lua_State* L) {
  push_interrupt_error(L);
  return 1;
}

// After an interrupt was handled (a REPL line cancelled by Ctrl-C), the
// next Ctrl-C is a new one, not the second of an insisting user.
int l_clear_interrupt(lua_State* L) {
  cancel::reset();
  lua_sethook(L, nullptr, 0, 0);  // an interrupt hook still armed is cleared too
  lua_pushboolean(L, 1);
  return 1;
}

int l_build(lua_State* L) {
  lua_createtable(L, 0, 4);
  set_field(L, "version", build::version);
  set_field(L, "commit", build::commit);
  set_field(L, "built_at", build::built_at);
  lua_pushinteger(L, build::helper_protocol);
  lua_setfield(L, -2, "helper_protocol");
  return 1;
}

int l_lua_dir(lua_State* L) {
  push_string(L, install::lua_dir());
  return 1;
}

int l_exe(lua_State* L) {
  push_string(L, install::self_exe());
  return 1;
}

// Clock ticks per second: the unit of a process's CPU times in /proc/<pid>/stat.
int l_clock_ticks(lua_State* L) {
  long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) throw Error::last("sysconf(_SC_CLK_TCK)");
  lua_pushinteger(L, hz);
  return 1;
}

int l_sha256(lua_State* L) {
  push_string(L, sha256_hex(check_string(L, 1)));
  return 1;
}

int open_sys(lua_State* L) {
  static const luaL_Reg fns[] = {
      {"getuid", protect<l_getuid>},     {"geteuid", protect<l_geteuid>},
      {"getgid", protect<l_getgid>},     {"getpid", protect<l_getpid>},
      {"isatty", protect<l_isatty>},     {"hostname", protect<l_hostname>},
      {"uname", protect<l_uname>},       {"time", protect<l_time>},
      {"monotonic_ms", protect<l_monotonic_ms>}, {"sleep_ms", protect<l_sleep_ms>},
      {"interrupted", protect<l_interrupted>},
      {"interrupt_error", protect<l_interrupt_error>},   {"clear_interrupt", protect<l_clear_interrupt>},
      {"build", protect<l_build>},
      {"lua_dir", protect<l_lua_dir>},   {"exe", protect<l_exe>},
      {"sha256", protect<l_sha256>},     {"clock_ticks", protect<l_clock_ticks>},
      {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(sys, open_sys);
}  // namespace banger::lua
