// banger.native.dns: the vm. zone responder's socket (engine/net/dns_server.hpp).
//   dns.listen(address, port) -> server handle
//   server:port() -> the bound port
//   server:serve_once(timeout_ms, lookup) -> handled (bool)
//       lookup(vm_name) -> "a.b.c.d" or nil; an error in it is answered
//       SERVFAIL and re-raised as it was
#include <arpa/inet.h>

#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/net/dns_server.hpp"
#include "engine/priv/validate.hpp"

namespace banger::lua {

template <>
struct HandleTraits<dns::Server> {
  static constexpr const char* name = "banger.dns.server";
  static std::string describe(const dns::Server& s) { return "port " + std::to_string(s.port()); }
};

namespace {

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
  static const luaL_Reg fns[] = {{"listen", protect<l_listen>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(dns, open_dns);
}  // namespace banger::lua
