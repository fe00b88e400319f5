// banger.native.portfwd: a VM's port forwarder (engine/net/port_forward.hpp).
//   portfwd.open{ rules = { {proto=, host_address=, host_port=, guest_port=}, ... },
//                      guest_ip = "a.b.c.d" | nil, agent = endpoint | nil, buffer_bytes=, max_connections=, udp_idle_ms= }
//       -> forwarder handle; binds every listener now (EADDRINUSE names the port)
//   forwarder:port(i) -> the port rule i listens on
//   forwarder:run_for(ms) -> true; moves bytes for that long (ECANCELED on a signal)
//   forwarder:active() -> open TCP connections plus live UDP clients
//   portfwd.report(line) -> true: writes line to stdout and points
//       stdout at /dev/null (a detached forwarder tells its starter it is
//       ready, or why not, through the pipe that is its stdout)
#include <fcntl.h>
#include <unistd.h>

#include "engine/core/error.hpp"
#include "engine/guest/agent_dialer.hpp"
#include "engine/lua/agent_endpoint.hpp"
#include "engine/lua/binding.hpp"
#include "engine/net/port_forward.hpp"

namespace banger::lua {

struct Forwarder {
  std::unique_ptr<net::GuestDialer> dialer;
  std::unique_ptr<net::PortForwarder> forwarder;
  std::size_t rules = 0;
};
template <>
struct HandleTraits<Forwarder> {
  static constexpr const char* name = "banger.portfwd.forwarder";
  static std::string describe(const Forwarder& f) { return std::to_string(f.rules) + " forwards"; }
};

namespace {

// The one place that picks how the guest is reached: its bridged address
// when it has one; a VM without network through the agent's channel (its
// forwarding port: engine/guest/agent_dialer.hpp).
std::unique_ptr<net::GuestDialer> dialer_for(lua_State* L, int idx) {
  if (auto guest_ip = field_string(L, idx, "guest_ip")) return std::make_unique<net::AddressDialer>(*guest_ip);
  if (push_table_field(L, idx, "agent")) {
    guest::Endpoint ep = endpoint_from(L, lua_gettop(L));
    lua_pop(L, 1);
    auto dialer = std::make_unique<guest::AgentDialer>(guest::forward_endpoint(ep));
    dialer->connect();
    return dialer;
  }
  throw Error("ENOTSUP", "forwarding needs the guest's address (guest_ip) or its agent (agent)");
}

net::ForwardRule rule_at(lua_State* L, int idx) {
  net::ForwardRule r;
  auto proto = field_string(L, idx, "proto").value_or("tcp");
  if (proto == "udp") r.proto = net::ForwardProto::udp;
  else if (proto != "tcp") throw Raise("bad option 'proto' (tcp or udp)");
  auto address = field_string(L, idx, "host_address");
  if (!address) throw Raise("bad option 'host_address' (string expected)");
  r.host_address = *address;
  r.host_port = field_int<std::uint16_t>(L, idx, "host_port").value_or(0);
  auto guest = field_int<std::uint16_t>(L, idx, "guest_port", 1);
  if (!guest) throw Raise("bad option 'guest_port' (integer expected)");
  r.guest_port = *guest;
  return r;
}

int l_open(lua_State* L) {
  check_table(L, 1);
  std::vector<net::ForwardRule> rules;
  for_each_table(L, 1, "rules", [&](int idx, lua_Integer) { rules.push_back(rule_at(L, idx)); });
  net::ForwardLimits limits;
  if (auto b = field_int<std::size_t>(L, 1, "buffer_bytes", 1, 16 << 20)) limits.buffer_bytes = *b;
  if (auto m = field_int<std::size_t>(L, 1, "max_connections", 1, 65536)) limits.max_connections = *m;
  if (auto ms = field_int<lua_Integer>(L, 1, "udp_idle_ms", 1)) limits.udp_idle = std::chrono::milliseconds(*ms);
  auto f = std::make_unique<Forwarder>();
  f->dialer = dialer_for(L, 1);
  f->rules = rules.size();
  f->forwarder = std::make_unique<net::PortForwarder>(std::move(rules), *f->dialer, limits);
  push_handle(L, std::move(f));
  return 1;
}

int l_port(lua_State* L) {
  auto& f = check_handle<Forwarder>(L, 1);
  auto i = check_int<std::size_t>(L, 2, 1, f.rules);
  lua_pushinteger(L, f.forwarder->bound_port(i - 1));
  return 1;
}

int l_run_for(lua_State* L) {
  auto& f = check_handle<Forwarder>(L, 1);
  f.forwarder->run_for(std::chrono::milliseconds(check_int<lua_Integer>(L, 2, 0)));
  lua_pushboolean(L, 1);
  return 1;
}

int l_active(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_handle<Forwarder>(L, 1).forwarder->active()));
  return 1;
}

int l_report(lua_State* L) {
  std::string line = check_string(L, 1) + "\n";
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // the starter went away: nobody to tell
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null < 0) throw Error::last("open", "/dev/null");
  ::dup2(null, STDOUT_FILENO);
  ::close(null);
  lua_pushboolean(L, 1);
  return 1;
}

int open_portfwd(lua_State* L) {
  static const luaL_Reg methods[] = {{"port", protect<l_port>},
                                     {"run_for", protect<l_run_for>},
                                     {"active", protect<l_active>},
                                     {nullptr, nullptr}};
  define_handle<Forwarder>(L, methods);
  static const luaL_Reg fns[] = {{"open", protect<l_open>}, {"report", protect<l_report>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(portfwd, open_portfwd);
}  // namespace banger::lua
