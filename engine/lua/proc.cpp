// banger.native.proc: child processes (engine/core/process.hpp).
//   proc.run{argv..., input=, env=, cwd=, umask=, timeout_ms=, stdout=, stderr=}
//       -> {code=, signal=, exited=, stdout=, stderr=}
//   proc.spawn{argv..., env=, cwd=, umask=, detach=, stdin=, stdout=, stderr=} -> child handle
//   stdio specs: "inherit" | "null" | "pipe" | {file=path, append=bool}
//   proc.cmdline(pid) -> {args...} or nil when the process is gone
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "engine/core/process.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
struct ChildHandle {
  process::Child child;
  std::string name;
};
template <>
struct HandleTraits<ChildHandle> {
  static constexpr const char* name = "banger.proc.child";
  static std::string describe(const ChildHandle& c) { return c.name + " (pid " + std::to_string(c.child.pid()) + ")"; }
};

namespace {

process::Stdio stdio_field(lua_State* L, int idx, const char* key) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, key);
  lua_rawget(L, idx);  // raw: no metamethod may raise through our frames
  process::Stdio s;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::string_view v = lua_tostring(L, -1);
    if (v == "inherit") s = process::Stdio::inherit();
    else if (v == "null") s = process::Stdio::null();
    else if (v == "pipe") s = process::Stdio::pipe();
    else {
      lua_pop(L, 1);
      throw Raise(std::string("bad option '") + key + "' (inherit, null, pipe or {file=...})");
    }
  } else if (lua_type(L, -1) == LUA_TTABLE) {
    auto file = field_string(L, -1, "file");
    if (!file) {
      lua_pop(L, 1);
      throw Raise(std::string("bad option '") + key + "' (table needs file=)");
    }
    s = process::Stdio::file(*file, field_boolean(L, -1, "append").value_or(true));
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw Raise(std::string("bad option '") + key + "'");
  }
  lua_pop(L, 1);
  return s;
}

process::SpawnOptions spawn_options(lua_State* L) {
  check_table(L, 1);
  process::SpawnOptions o;
  o.argv = check_string_list(L, 1);
  if (o.argv.empty()) throw Raise("proc: argv is empty");
  if (auto env = field_string_list(L, 1, "env")) o.env = std::move(*env);
  o.cwd = field_string(L, 1, "cwd").value_or("");
  if (auto um = field_int<mode_t>(L, 1, "umask", 0, 0777)) o.umask = *um;
  o.new_session = field_boolean(L, 1, "detach").value_or(false);
  o.in = stdio_field(L, 1, "stdin");
  o.out = stdio_field(L, 1, "stdout");
  o.err = stdio_field(L, 1, "stderr");
  return o;
}

void push_status(lua_State* L, const process::ExitStatus& st) {
  set_field_bool(L, "exited", st.exited);
  set_field(L, "code", static_cast<lua_Integer>(st.shell_code()));
  if (!st.exited) set_field(L, "signal", static_cast<lua_Integer>(st.signal));
}

int l_run(lua_State* L) {
  process::SpawnOptions o = spawn_options(L);
  std::string input = field_string(L, 1, "input").value_or("");
  auto timeout = field_int<lua_Integer>(L, 1, "timeout_ms", 0);
  auto r = process::run(std::move(o), input,
                        timeout ? std::optional(std::chrono::milliseconds(*timeout)) : std::nullopt);
  lua_createtable(L, 0, 5);
  push_status(L, r.status);
  set_field(L, "stdout", r.out);
  set_field(L, "stderr", r.err);
  return 1;
}

int l_spawn(lua_State* L) {
  process::SpawnOptions o = spawn_options(L);
  auto h = std::make_unique<ChildHandle>();
  h->name = o.argv[0];
  h->child = process::spawn(o);
  push_handle(L, std::move(h));
  return 1;
}

int l_pid(lua_State* L) {
  lua_pushinteger(L, check_handle<ChildHandle>(L, 1).child.pid());
  return 1;
}

// wait([timeout_ms]) -> status table, or nil, "timed out", "ETIMEDOUT"
int l_wait(lua_State* L) {
  auto& c = check_handle<ChildHandle>(L, 1);
  auto t = opt_int<lua_Integer>(L, 2, 0);
  auto st = c.child.wait(t ? std::optional(std::chrono::milliseconds(*t)) : std::nullopt);
  if (!st) throw Error("ETIMEDOUT", "timed out waiting for " + HandleTraits<ChildHandle>::describe(c));
  lua_createtable(L, 0, 3);
  push_status(L, *st);
  return 1;
}

int l_kill(lua_State* L) {
  auto& c = check_handle<ChildHandle>(L, 1);
  c.child.kill(opt_int<int>(L, 2, 0, SIGRTMAX).value_or(SIGTERM));
  lua_pushboolean(L, 1);
  return 1;
}

int l_write(lua_State* L) {
  auto& c = check_handle<ChildHandle>(L, 1);
  std::string data = check_string(L, 2);
  if (c.child.stdin_fd() < 0) throw Raise("stdin is not a pipe (or was closed)");
  std::string_view rest = data;
  while (!rest.empty()) {
    ssize_t n = ::write(c.child.stdin_fd(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("write to", c.name);
    rest.remove_prefix(static_cast<size_t>(n));
  }
  lua_pushboolean(L, 1);
  return 1;
}

int l_close_stdin(lua_State* L) {
  check_handle<ChildHandle>(L, 1).child.close_stdin();
  lua_pushboolean(L, 1);
  return 1;
}

// read_all("stdout"|"stderr") -> everything until EOF
int l_read_all(lua_State* L) {
  auto& c = check_handle<ChildHandle>(L, 1);
  std::string which = opt_string(L, 2).value_or("stdout");
  int fd = which == "stderr" ? c.child.stderr_fd() : c.child.stdout_fd();
  if (fd < 0) throw Raise(which + " is not a pipe");
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read from", c.name);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  c.child.close_fd(fd);
  push_string(L, out);
  return 1;
}

int l_cmdline(lua_State* L) {
  auto args = process::cmdline(check_int<pid_t>(L, 1));
  if (args.empty()) {
    lua_pushnil(L);
    return 1;
  }
  push_string_list(L, args);
  return 1;
}

int open_proc(lua_State* L) {
  static const luaL_Reg methods[] = {{"pid", protect<l_pid>},
                                     {"wait", protect<l_wait>},
                                     {"kill", protect<l_kill>},
                                     {"write", protect<l_write>},
                                     {"close_stdin", protect<l_close_stdin>},
                                     {"read_all", protect<l_read_all>},
                                     {nullptr, nullptr}};
  define_handle<ChildHandle>(L, methods);
  static const luaL_Reg fns[] = {
      {"run", protect<l_run>}, {"spawn", protect<l_spawn>}, {"cmdline", protect<l_cmdline>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(proc, open_proc);
}  // namespace banger::lua
