// banger.native.dns: the vm. zone responder's socket (engine/net/dns_server.hpp).
//   dns.listen(address, port) -> server handle
//   server:port() -> the bound port
//   server:serve_once(timeout_ms, lookup) -> handled (bool)
//       lookup(vm_name) -> "a.b.c.d" or nil; an error in it is answered
//       SERVFAIL and raised
#include <arpa/inet.h>

#include "engine/lua/binding.hpp"
#include "engine/net/dns_server.hpp"
#include "engine/priv/validate.hpp"

namespace banger::lua {

template <>
struct HandleTraits<dns::Server> {
  static constexpr const char* name = "banger.dns_server";
  static std::string describe(const dns::Server& s) { return "port " + std::to_string(s.port()); }
};

namespace {

int l_listen(lua_State* L) {
  auto address = check_string(L, 1);
  auto port = check_integer(L, 2);
  if (port < 0 || port > 65535) throw Error("EINVAL", "invalid port " + std::to_string(port));
  push_handle(L, std::make_unique<dns::Server>(address, static_cast<std::uint16_t>(port)));
  return 1;
}

int l_port(lua_State* L) {
  lua_pushinteger(L, check_handle<dns::Server>(L, 1).port());
  return 1;
}

int l_serve_once(lua_State* L) {
  auto& server = check_handle<dns::Server>(L, 1);
  auto timeout = check_integer(L, 2);
  if (lua_type(L, 3) != LUA_TFUNCTION) raise_arg(L, 3, "function");
  dns::Lookup lookup = [L](const std::string& name) -> std::optional<std::uint32_t> {
    lua_pushvalue(L, 3);
    push_string(L, name);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      std::string msg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "lookup failed";
      lua_pop(L, 1);
      throw Error("ELOOKUP", "DNS lookup of " + name + ".vm: " + msg);
    }
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
  static const luaL_Reg fns[] = {{"listen", protect<l_listen>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(dns, open_dns);
}  // namespace banger::lua
