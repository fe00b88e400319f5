// banger.native.sys: facts about this process and host, and a cancellable sleep.
#include <fcntl.h>
#include <poll.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <chrono>
#include <string>

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

// read(fd, max_bytes, timeout_ms?) -> the bytes available now (at most
// max_bytes), "" at end of file, or nil, "timed out", "ETIMEDOUT" when none
// arrived within timeout_ms (nil: wait without limit). Unbuffered, unlike
// io.read, so a caller that waits with a timeout (banger mcp's idle
// timeout on stdin) never has bytes hidden in a stdio buffer. Ends at once
// on SIGINT/SIGTERM (ECANCELED).
int l_read(lua_State* L) {
  const int fd = check_int<int>(L, 1, 0);
  const auto max = check_int<lua_Integer>(L, 2, 1, 1 << 24);
  const auto timeout = opt_int<lua_Integer>(L, 3, 0, INT32_MAX);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout.value_or(0));
  for (;;) {
    // poll's 0 is also an EINTR: the deadline, not the return, says timed out
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!timeout) left = std::chrono::milliseconds(1000);
    if (timeout && left.count() <= 0) throw Error("ETIMEDOUT", "timed out reading fd " + std::to_string(fd));
    pollfd p{fd, POLLIN, 0};
    if (cancel::poll(&p, 1, left) > 0) break;
  }
  std::string buf(static_cast<size_t>(max), '\0');
  ssize_t n;
  do {
    n = ::read(fd, buf.data(), buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw Error::last("read", "fd " + std::to_string(fd));
  buf.resize(static_cast<size_t>(n));
  push_string(L, buf);
  return 1;
}

// write(fd, data) -> true: all of data, retrying short writes.
int l_write(lua_State* L) {
  const int fd = check_int<int>(L, 1, 0);
  const std::string data = check_string(L, 2);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("write", "fd " + std::to_string(fd));
    done += static_cast<size_t>(n);
  }
  lua_pushboolean(L, 1);
  return 1;
}

// claim_stdio() -> in_fd, out_fd: private (close-on-exec) copies of
// descriptors 0 and 1 for a protocol that owns them (banger mcp's JSON-RPC),
// after which 0 reads /dev/null and 1 writes to 2: a child process or a
// stray io.write can neither eat the protocol's input nor corrupt its output.
int l_claim_stdio(lua_State* L) {
  std::fflush(stdout);
  const int in = static_cast<int>(check_sys(::fcntl(0, F_DUPFD_CLOEXEC, 3), "dup", "fd 0"));
  const int out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (out < 0) {
    const Error e = Error::last("dup", "fd 1");
    ::close(in);
    throw e;
  }
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(2, 1) < 0) {
    const Error e = Error::last("redirect standard input/output");
    if (null >= 0) ::close(null);
    ::close(in);
    ::close(out);
    throw e;
  }
  ::close(null);
  lua_pushinteger(L, in);
  lua_pushinteger(L, out);
  return 2;
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
      {"read", protect<l_read>},         {"write", protect<l_write>},
      {"claim_stdio", protect<l_claim_stdio>},
      {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(sys, open_sys);
}  // namespace banger::lua
