// banger.native.agent: the guest agent client (engine/guest/agent_client.hpp).
//   agent.connect{kind="unix"|"vsock_uds"|"vsock", path=, cid=, port=, timeout_ms=, wait=bool} -> handle
//   a:hello() -> {agent_version, kernel, hostname, proto, ...}
//   a:exec{argv..., env={}, cwd=, stdin=, on_stdout=fn, on_stderr=fn, timeout_ms=}
//       -> {code=, signal=, interrupted=, timed_out=, stdout=, stderr=} (output collected when no callback)
//   a:put(path, data or fn() -> chunk|nil, {mode=, uid=, gid=}) -> bytes
//   a:get(path[, fn(chunk)[, limit]]) -> data|true
//   a:list(path) -> {{name=, type=, size=, mode=, mtime=}, ...}, truncated, is_dir; a:remove(path[, recursive])
//   a:poweroff()
//   a:ping([timeout_ms]) -> true, round trip in milliseconds (a float)
//   a:reidentify{generation=, hostname=, machine_id=, time_ns=, entropy=, net={dev=, mac=, address=, prefix=,
//       gateway=}, dns={...}, ssh_host_keys=bool}
//       -> {ssh_host_keys = "regenerated"|"none", took_ms=, repeated=, steps_ms={clock=, ..., ["ssh-host-keys"]=}}
//       (time_ns absent: the host's clock when sent; entropy absent: 64 bytes from getrandom)
//   a:mount{serial=, target=, fstype="ext4", timeout_ms=10000} -> true
//   a:listeners() -> {{proto=, family=, address=, port=, inode=, pid=, comm=}, ...}, truncated
//       (TCP sockets in LISTEN and bound unconnected UDP sockets; pid and comm nil when not visible)
#include "engine/guest/agent_client.hpp"
#include "engine/lua/agent_endpoint.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/lua/json_value.hpp"

namespace banger::lua {
template <>
struct HandleTraits<guest::AgentClient> {
  static constexpr const char* name = "banger.agent.client";
  static std::string describe(const guest::AgentClient& c) {
    return "(agent " + c.hello().value("agent_version", std::string("?")) + ")";
  }
};

guest::Endpoint endpoint_from(lua_State* L, int idx) {
  check_table(L, idx);
  guest::Endpoint ep;
  std::string kind = field_string(L, idx, "kind").value_or("unix");
  if (kind == "unix" || kind == "serial_socket") ep.kind = guest::Endpoint::Kind::unix_socket;
  else if (kind == "vsock_uds") ep.kind = guest::Endpoint::Kind::vsock_uds;
  else if (kind == "vsock") ep.kind = guest::Endpoint::Kind::vsock;
  else throw Raise("unknown agent endpoint kind '" + kind + "'");
  ep.path = field_string(L, idx, "path").value_or("");
  ep.cid = field_int<std::uint32_t>(L, idx, "cid").value_or(0);
  ep.port = field_int<std::uint32_t>(L, idx, "port").value_or(52);
  return ep;
}

namespace {

int l_connect(lua_State* L) {
  guest::Endpoint ep = endpoint_from(L, 1);
  auto timeout = std::chrono::milliseconds(field_int<lua_Integer>(L, 1, "timeout_ms", 0).value_or(10000));
  bool wait = field_boolean(L, 1, "wait").value_or(false);
  push_handle(L, wait ? guest::AgentClient::wait_ready(ep, timeout) : guest::AgentClient::connect(ep, timeout));
  return 1;
}

int l_hello(lua_State* L) {
  push_json(L, check_handle<guest::AgentClient>(L, 1).hello());
  return 1;
}

// The Lua function at `fn_idx` gets each chunk; without one the output is
// collected. Ctrl-C waits for the exec, which passes the signal on to the
// guest command and streams the rest of its output (engine/lua/callback.hpp).
guest::OutputFn lua_callback(lua_State* L, int fn_idx, std::string* sink) {
  if (Callback fn{L, fn_idx, Interrupt::defer}) {
    return [fn](std::string_view chunk) {
      fn([&](lua_State* S) {
        push_string(S, chunk);
        return 1;
      });
    };
  }
  return [sink](std::string_view chunk) { sink->append(chunk); };
}

int l_exec(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  check_table(L, 2);
  guest::ExecRequest req;
  req.argv = check_string_list(L, 2);
  if (req.argv.empty()) throw Raise("exec: argv is empty");
  req.env = field_string_list(L, 2, "env").value_or(std::vector<std::string>{});
  req.cwd = field_string(L, 2, "cwd").value_or("");
  req.stdin_data = field_string(L, 2, "stdin");
  req.timeout = std::chrono::milliseconds(field_int<lua_Integer>(L, 2, "timeout_ms", 0).value_or(0));
  lua_settop(L, 2);
  push_function_field(L, 2, "on_stdout");  // 3
  push_function_field(L, 2, "on_stderr");  // 4
  std::string out, err;
  guest::ExecResult r = c.exec(req, lua_callback(L, 3, &out), lua_callback(L, 4, &err));
  lua_createtable(L, 0, 5);
  set_field(L, "code", static_cast<lua_Integer>(r.code));
  if (r.signal) set_field(L, "signal", static_cast<lua_Integer>(r.signal));
  set_field_bool(L, "interrupted", r.interrupted);
  set_field_bool(L, "timed_out", r.timed_out);
  if (lua_type(L, 3) != LUA_TFUNCTION) set_field(L, "stdout", out);
  if (lua_type(L, 4) != LUA_TFUNCTION) set_field(L, "stderr", err);
  return 1;
}

// data is a string, or a function returning the next chunk (a string) or
// nil at the end: a file larger than memory streams through.
int l_put(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  std::string path = check_string(L, 2);
  auto mode = field_int<unsigned>(L, 4, "mode", 0, kMaxMode).value_or(0644);
  auto uid = field_int<std::uint32_t>(L, 4, "uid").value_or(0);
  auto gid = field_int<std::uint32_t>(L, 4, "gid").value_or(0);
  if (lua_type(L, 3) != LUA_TFUNCTION) {
    std::string data = check_string(L, 3);
    c.put(path, data, mode, uid, gid);
    lua_pushinteger(L, static_cast<lua_Integer>(data.size()));
    return 1;
  }
  Callback next{L, 3};
  auto total = c.put(
      path,
      [&]() -> std::optional<std::string> {
        std::optional<std::string> chunk;
        next.call(1, [](lua_State*) { return 0; });
        if (lua_type(L, -1) == LUA_TSTRING) {
          size_t n = 0;
          const char* s = lua_tolstring(L, -1, &n);
          chunk.emplace(s, n);
        } else if (!lua_isnil(L, -1)) {
          lua_pop(L, 1);
          throw Raise("put: the reader must return a string or nil");
        }
        lua_pop(L, 1);
        return chunk;
      },
      mode, uid, gid);
  lua_pushinteger(L, static_cast<lua_Integer>(total));
  return 1;
}

// With a function as the second argument the file streams to it chunk by
// chunk (and true is returned); else it is returned whole. A third
// argument caps the bytes the agent sends.
int l_get(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  std::string path = check_string(L, 2);
  std::optional<std::uint64_t> limit;
  if (!lua_isnoneornil(L, 4)) limit = check_int<std::uint64_t>(L, 4, 0);
  if (lua_type(L, 3) != LUA_TFUNCTION) {
    if (!lua_isnoneornil(L, 3)) throw Raise("get: the sink must be a function");
    std::string out;
    c.get(path, [&out](std::string_view chunk) { out += chunk; }, limit);
    push_string(L, out);
    return 1;
  }
  Callback sink{L, 3};
  c.get(
      path,
      [&](std::string_view chunk) {
        sink([&](lua_State* S) {
          push_string(S, chunk);
          return 1;
        });
      },
      limit);
  lua_pushboolean(L, 1);
  return 1;
}

int l_list(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  guest::ListResult r = c.list(check_string(L, 2));
  lua_createtable(L, static_cast<int>(r.entries.size()), 0);
  lua_Integer i = 0;
  for (const auto& e : r.entries) {
    lua_createtable(L, 0, 5);
    set_field(L, "name", e.name);
    set_field(L, "type", e.type);
    set_field(L, "size", static_cast<lua_Integer>(e.size));
    set_field(L, "mode", static_cast<lua_Integer>(e.mode));
    set_field(L, "mtime", static_cast<lua_Integer>(e.mtime));
    lua_rawseti(L, -2, ++i);
  }
  lua_pushboolean(L, r.truncated);
  lua_pushboolean(L, r.dir);
  return 3;
}

int l_remove(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  c.remove(check_string(L, 2), lua_toboolean(L, 3) != 0);
  lua_pushboolean(L, 1);
  return 1;
}

int l_ping(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  auto timeout = std::chrono::milliseconds(lua_isnoneornil(L, 2) ? 10000 : check_int<lua_Integer>(L, 2, 1));
  auto rtt = c.ping(timeout);
  lua_pushboolean(L, 1);
  lua_pushnumber(L, static_cast<double>(rtt.count()) / 1000.0);
  return 2;
}

int l_poweroff(lua_State* L) {
  check_handle<guest::AgentClient>(L, 1).poweroff();
  lua_pushboolean(L, 1);
  return 1;
}

std::string required_string(lua_State* L, int idx, const char* key) {
  auto v = field_string(L, idx, key);
  if (!v) throw Raise(std::string("bad option '") + key + "' (string expected, got no value)");
  return *v;
}

std::optional<guest::NetConfig> net_option(lua_State* L, int idx) {
  if (!push_table_field(L, idx, "net")) return std::nullopt;
  int n = lua_gettop(L);
  guest::NetConfig net;
  net.dev = field_string(L, n, "dev").value_or("eth0");
  net.mac = required_string(L, n, "mac");
  net.address = required_string(L, n, "address");
  auto prefix = field_int<int>(L, n, "prefix", 0, 32);
  if (!prefix) throw Raise("bad option 'prefix' (integer expected, got no value)");
  net.prefix = *prefix;
  net.gateway = field_string(L, n, "gateway").value_or("");
  lua_pop(L, 1);
  return net;
}

int l_reidentify(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  check_table(L, 2);
  guest::ReidentifyRequest r;
  r.generation = required_string(L, 2, "generation");
  r.hostname = required_string(L, 2, "hostname");
  r.machine_id = required_string(L, 2, "machine_id");
  r.time_ns = field_int<lua_Integer>(L, 2, "time_ns", 0).value_or(0);
  r.entropy = field_string(L, 2, "entropy").value_or("");
  if (field_string(L, 2, "entropy") && r.entropy.size() < guest::kMinEntropy) {
    throw Raise("bad option 'entropy' (at least " + std::to_string(guest::kMinEntropy) + " bytes expected, got " +
                std::to_string(r.entropy.size()) + ")");
  }
  r.net = net_option(L, 2);
  r.dns = field_string_list(L, 2, "dns");
  r.ssh_host_keys = field_boolean(L, 2, "ssh_host_keys").value_or(true);
  guest::ReidentifyResult res = c.reidentify(r);
  lua_createtable(L, 0, 4);
  set_field(L, "ssh_host_keys", res.ssh_host_keys);
  set_field(L, "took_ms", static_cast<lua_Integer>(res.took_ms));
  set_field_bool(L, "repeated", res.repeated);
  lua_createtable(L, 0, static_cast<int>(res.steps_ms.size()));
  for (const auto& [name, ms] : res.steps_ms) set_field(L, name.c_str(), static_cast<lua_Integer>(ms));
  lua_setfield(L, -2, "steps_ms");
  return 1;
}

int l_mount(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  check_table(L, 2);
  guest::MountRequest m;
  m.serial = required_string(L, 2, "serial");
  m.target = required_string(L, 2, "target");
  m.fstype = field_string(L, 2, "fstype").value_or("ext4");
  m.timeout_ms = field_int<int>(L, 2, "timeout_ms", 0).value_or(10000);
  c.mount(m);
  lua_pushboolean(L, 1);
  return 1;
}

int l_listeners(lua_State* L) {
  auto& c = check_handle<guest::AgentClient>(L, 1);
  guest::ListenersResult r = c.listeners();
  lua_createtable(L, static_cast<int>(r.listeners.size()), 0);
  lua_Integer i = 0;
  for (const auto& l : r.listeners) {
    lua_createtable(L, 0, 7);
    set_field(L, "proto", l.proto);
    set_field(L, "family", l.family);
    set_field(L, "address", l.address);
    set_field(L, "port", static_cast<lua_Integer>(l.port));
    set_field(L, "inode", static_cast<lua_Integer>(l.inode));
    if (l.pid) {
      set_field(L, "pid", static_cast<lua_Integer>(*l.pid));
      set_field(L, "comm", l.comm);
    }
    lua_rawseti(L, -2, ++i);
  }
  lua_pushboolean(L, r.truncated);
  return 2;
}

int open_agent(lua_State* L) {
  static const luaL_Reg methods[] = {{"hello", protect<l_hello>}, {"exec", protect<l_exec>},
                                     {"put", protect<l_put>},     {"get", protect<l_get>},
                                     {"ping", protect<l_ping>},   {"poweroff", protect<l_poweroff>},
                                     {"reidentify", protect<l_reidentify>}, {"mount", protect<l_mount>},
                                     {"listeners", protect<l_listeners>}, {"list", protect<l_list>},
                                     {"remove", protect<l_remove>},       {nullptr, nullptr}};
  define_handle<guest::AgentClient>(L, methods);
  static const luaL_Reg fns[] = {{"connect", protect<l_connect>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  lua_pushinteger(L, guest::kProtocolMajor);
  lua_setfield(L, -2, "protocol");
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(agent, open_agent);
}  // namespace banger::lua
