// banger.native.dns: the vm. zone responder's socket (engine/net/dns_server.hpp).
//   dns.listen(address, port) -> server handle
//   server:port() -> the bound port
//   server:serve_once(timeout_ms, lookup) -> handled (bool)
//       lookup(vm_name) -> "a.b.c.d" or nil; an error in it is answered
//       SERVFAIL and re-raised as it was
// The egress resolver's parts (engine/net/dns_egress.hpp, dns_forward.hpp):
//   dns.udp_listen(address, port) -> listener handle
//   listener:port(); listener:receive(timeout_ms) -> packet, peer_ip, peer_port | nil
//   listener:send(packet, ip, port)
//   dns.question(packet) -> { name=, qtype=, id= } | nil (not a query with one question)
//   dns.refused(packet), dns.servfail(packet) -> the answer's bytes ("" for none)
//   dns.forward(packet, { "ip[:port]", ... }, timeout_ms) -> reply | nil, msg, "ETIMEDOUT"
//   dns.answer(reply, name) -> { rcode=, addresses = { {address=, ttl=}, ... } } | nil
//   dns.host_allowed({ pattern, ... }, name) -> bool
//   dns.cap_ttls(reply, max_ttl) -> reply with every record's TTL at most max_ttl
#include <arpa/inet.h>

#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/core/error.hpp"
#include "engine/net/dns_egress.hpp"
#include "engine/net/dns_forward.hpp"
#include "engine/net/dns_server.hpp"
#include "engine/priv/validate.hpp"

namespace banger::lua {

template <>
struct HandleTraits<dns::Server> {
  static constexpr const char* name = "banger.dns.server";
  static std::string describe(const dns::Server& s) { return "port " + std::to_string(s.port()); }
};

template <>
struct HandleTraits<dns::UdpListener> {
  static constexpr const char* name = "banger.dns.udp_listener";
  static std::string describe(const dns::UdpListener& s) { return "port " + std::to_string(s.port()); }
};

namespace {

std::string dotted(std::uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
         "." + std::to_string(a & 255);
}

int l_udp_listen(lua_State* L) {
  auto address = check_string(L, 1);
  auto port = check_int<std::uint16_t>(L, 2);
  push_handle(L, std::make_unique<dns::UdpListener>(address, port));
  return 1;
}

int l_udp_port(lua_State* L) {
  lua_pushinteger(L, check_handle<dns::UdpListener>(L, 1).port());
  return 1;
}

int l_receive(lua_State* L) {
  auto& l = check_handle<dns::UdpListener>(L, 1);
  auto d = l.receive(std::chrono::milliseconds(check_int<lua_Integer>(L, 2, 0)));
  if (!d) {
    lua_pushnil(L);
    return 1;
  }
  push_string(L, d->data);
  push_string(L, d->peer_ip);
  lua_pushinteger(L, d->peer_port);
  return 3;
}

int l_send(lua_State* L) {
  auto& l = check_handle<dns::UdpListener>(L, 1);
  l.send(check_string(L, 2), std::string(check_string(L, 3)), check_int<std::uint16_t>(L, 4));
  return 0;
}

int l_question(lua_State* L) {
  auto q = dns::parse_query(check_string(L, 1));
  if (!q || !q->question || q->opcode != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 3);
  push_string(L, q->question->name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, q->question->qtype);
  lua_setfield(L, -2, "qtype");
  lua_pushinteger(L, q->id);
  lua_setfield(L, -2, "id");
  return 1;
}

int l_refused(lua_State* L) {
  push_string(L, dns::refused(check_string(L, 1)));
  return 1;
}

int l_servfail(lua_State* L) {
  push_string(L, dns::servfail(check_string(L, 1)));
  return 1;
}

int l_forward(lua_State* L) {
  auto packet = check_string(L, 1);
  auto servers = check_string_list(L, 2);
  auto timeout = std::chrono::milliseconds(check_int<lua_Integer>(L, 3, 1, 60000));
  auto reply = dns::forward(packet, servers, timeout);
  if (!reply) throw Error("ETIMEDOUT", "no upstream DNS server answered");
  push_string(L, *reply);
  return 1;
}

int l_answer(lua_State* L) {
  auto a = dns::parse_answer(check_string(L, 1), check_string(L, 2));
  if (!a) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, a->rcode);
  lua_setfield(L, -2, "rcode");
  lua_createtable(L, static_cast<int>(a->addresses.size()), 0);
  for (std::size_t i = 0; i < a->addresses.size(); ++i) {
    lua_createtable(L, 0, 2);
    push_string(L, dotted(a->addresses[i].address));
    lua_setfield(L, -2, "address");
    lua_pushinteger(L, a->addresses[i].ttl);
    lua_setfield(L, -2, "ttl");
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "addresses");
  return 1;
}

int l_host_allowed(lua_State* L) {
  lua_pushboolean(L, dns::host_allowed(check_string_list(L, 1), check_string(L, 2)));
  return 1;
}

int l_cap_ttls(lua_State* L) {
  push_string(L, dns::cap_ttls(check_string(L, 1), check_int<std::uint32_t>(L, 2)));
  return 1;
}

int l_listen(lua_State* L) {
  auto address = check_string(L, 1);
  auto port = check_int<std::uint16_t>(L, 2);
  push_handle(L, std::make_unique<dns::Server>(address, port));
  return 1;
}

int l_port(lua_State* L) {
  lua_pushinteger(L, check_handle<dns::Server>(L, 1).port());
  return 1;
}

int l_serve_once(lua_State* L) {
  auto& server = check_handle<dns::Server>(L, 1);
  auto timeout = check_int<lua_Integer>(L, 2, 0);
  if (lua_type(L, 3) != LUA_TFUNCTION) raise_arg(L, 3, "function");
  Callback fn{L, 3};
  dns::Lookup lookup = [L, fn](const std::string& name) -> std::optional<std::uint32_t> {
    fn.call(1, [&](lua_State* S) {
      push_string(S, name);
      return 1;
    });
    std::optional<std::uint32_t> ip;
    if (lua_type(L, -1) == LUA_TSTRING) ip = validate::ipv4(lua_tostring(L, -1));
    lua_pop(L, 1);
    return ip;
  };
  lua_pushboolean(L, server.serve_once(std::chrono::milliseconds(timeout), lookup));
  return 1;
}

int open_dns(lua_State* L) {
  static const luaL_Reg methods[] = {
      {"port", protect<l_port>}, {"serve_once", protect<l_serve_once>}, {nullptr, nullptr}};
  define_handle<dns::Server>(L, methods);
  static const luaL_Reg udp_methods[] = {{"port", protect<l_udp_port>},
                                         {"receive", protect<l_receive>},
                                         {"send", protect<l_send>},
                                         {nullptr, nullptr}};
  define_handle<dns::UdpListener>(L, udp_methods);
  static const luaL_Reg fns[] = {{"listen", protect<l_listen>},
                                 {"udp_listen", protect<l_udp_listen>},
                                 {"question", protect<l_question>},
                                 {"refused", protect<l_refused>},
                                 {"servfail", protect<l_servfail>},
                                 {"forward", protect<l_forward>},
                                 {"answer", protect<l_answer>},
                                 {"host_allowed", protect<l_host_allowed>},
                                 {"cap_ttls", protect<l_cap_ttls>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(dns, open_dns);
}  // namespace banger::lua
