#include "engine/lua/fd_handle.hpp"

namespace banger::lua {
namespace {

int l_fileno(lua_State* L) {
  lua_pushinteger(L, check_handle<OwnedFd>(L, 1).fd.get());
  return 1;
}

}  // namespace

void push_fd(lua_State* L, UniqueFd fd) {
  static const luaL_Reg methods[] = {{"fileno", protect<l_fileno>}, {nullptr, nullptr}};
  define_handle<OwnedFd>(L, methods);  // idempotent
  push_handle(L, std::make_unique<OwnedFd>(OwnedFd{std::move(fd)}));
}

int check_fd(lua_State* L, int idx) { return check_handle<OwnedFd>(L, idx).fd.get(); }

}  // namespace banger::lua
