// banger.native.ssh: banger's SSH client (engine/guest/ssh_client.hpp) and
// its known_hosts.
//   ssh.connect{host=, port=, user=, key=, known_hosts=, names={...}, subject=, timeout_ms=} -> client
//   client:exec(command[, {stdin=, on_stdout=fn, on_stderr=fn, timeout_ms=}])
//       -> {code=, signal=, stdout=, stderr=, interrupted=, timed_out=}
//   client:upload(path, data[, mode])
//   client:pinned_now() -> bool (this connection pinned the host key)
//   client:fingerprint() -> "SHA256:..."
//   ssh.forget(known_hosts, {host, ...}) -> number of names removed
#include "engine/guest/ssh_client.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"

namespace banger::lua {

template <>
struct HandleTraits<ssh::Client> {
  static constexpr const char* name = "banger.ssh.client";
};

namespace {

int l_connect(lua_State* L) {
  check_table(L, 1);
  ssh::ConnectOptions o;
  o.host = field_string(L, 1, "host").value_or("");
  o.port = field_int<int>(L, 1, "port", 1, 65535).value_or(22);
  o.user = field_string(L, 1, "user").value_or("root");
  o.private_key = field_string(L, 1, "key").value_or("");
  o.known_hosts = field_string(L, 1, "known_hosts").value_or("");
  o.extra_names = field_string_list(L, 1, "names").value_or(std::vector<std::string>{});
  o.subject = field_string(L, 1, "subject").value_or("");
  o.timeout = std::chrono::milliseconds(field_int<lua_Integer>(L, 1, "timeout_ms", 0).value_or(15000));
  if (o.host.empty() || o.private_key.empty() || o.known_hosts.empty()) {
    throw Error("EINVAL", "ssh.connect needs host, key and known_hosts");
  }
  push_handle(L, std::make_unique<ssh::Client>(o));
  return 1;
}

// Like agent's exec: Ctrl-C waits for the remote command's end.
std::function<void(std::string_view)> callback(lua_State* L, int idx) {
  Callback fn{L, idx, Interrupt::defer};
  if (!fn) return nullptr;
  return [fn](std::string_view chunk) {
    fn([&](lua_State* S) {
      push_string(S, chunk);
      return 1;
    });
  };
}

int l_exec(lua_State* L) {
  auto& c = check_handle<ssh::Client>(L, 1);
  auto command = check_string(L, 2);
  std::string input;
  std::function<void(std::string_view)> on_out, on_err;
  std::chrono::milliseconds timeout{0};
  if (lua_type(L, 3) == LUA_TTABLE) {
    input = field_string(L, 3, "stdin").value_or("");
    timeout = std::chrono::milliseconds(field_int<lua_Integer>(L, 3, "timeout_ms", 0).value_or(0));
    push_function_field(L, 3, "on_stdout");  // 4
    push_function_field(L, 3, "on_stderr");  // 5
    on_out = callback(L, 4);
    on_err = callback(L, 5);
  }
  auto r = c.exec(command, input, on_out, on_err, timeout);
  lua_createtable(L, 0, 4);
  set_field(L, "code", static_cast<lua_Integer>(r.code));
  if (!r.signal.empty()) set_field(L, "signal", r.signal);
  if (r.interrupted) set_field_bool(L, "interrupted", true);
  if (r.timed_out) set_field_bool(L, "timed_out", true);
  if (!on_out) set_field(L, "stdout", r.out);
  if (!on_err) set_field(L, "stderr", r.err);
  return 1;
}

int l_upload(lua_State* L) {
  auto& c = check_handle<ssh::Client>(L, 1);
  c.upload(check_string(L, 2), check_string(L, 3), opt_int<int>(L, 4, 0, kMaxMode).value_or(0600));
  lua_pushboolean(L, 1);
  return 1;
}

int l_pinned_now(lua_State* L) {
  lua_pushboolean(L, check_handle<ssh::Client>(L, 1).pinned_now());
  return 1;
}

int l_fingerprint(lua_State* L) {
  push_string(L, ssh::fingerprint(check_handle<ssh::Client>(L, 1).host_key()));
  return 1;
}

int l_forget(lua_State* L) {
  lua_pushinteger(L, ssh::forget(check_string(L, 1), check_string_list(L, 2)));
  return 1;
}

int open_ssh(lua_State* L) {
  static const luaL_Reg methods[] = {{"exec", protect<l_exec>},
                                     {"upload", protect<l_upload>},
                                     {"pinned_now", protect<l_pinned_now>},
                                     {"fingerprint", protect<l_fingerprint>},
                                     {nullptr, nullptr}};
  define_handle<ssh::Client>(L, methods);
  static const luaL_Reg fns[] = {{"connect", protect<l_connect>}, {"forget", protect<l_forget>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(ssh, open_ssh);
}  // namespace banger::lua
