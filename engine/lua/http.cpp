// banger.native.http: downloads through libcurl (engine/core/download.hpp).
//   http.fetch(url [, {max_bytes=}]) -> body
//   http.download{url=, path=, sha256=, max_bytes=, on_progress=function(done, total)} -> {bytes=, sha256=}
#include "engine/core/download.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

int l_fetch(lua_State* L) {
  std::string url = check_string(L, 1);
  auto max = field_integer(L, 2, "max_bytes").value_or(16 << 20);
  push_string(L, fetch_text(url, static_cast<std::uint64_t>(max)));
  return 1;
}

int l_download(lua_State* L) {
  check_table(L, 1);
  std::string url = field_string(L, 1, "url").value_or("");
  std::string path = field_string(L, 1, "path").value_or("");
  if (url.empty() || path.empty()) throw Raise("http.download needs url= and path=");
  DownloadOptions o;
  o.expected_sha256 = field_string(L, 1, "sha256").value_or("");
  o.max_bytes = static_cast<std::uint64_t>(field_integer(L, 1, "max_bytes").value_or(0));
  lua_settop(L, 1);
  if (lua_getfield(L, 1, "on_progress") == LUA_TFUNCTION) {
    // Runs on this thread, inside curl's progress callback; errors in it
    // are ignored rather than thrown through libcurl's C frames.
    o.progress = [L](std::uint64_t done, std::uint64_t total) {
      lua_pushvalue(L, 2);
      lua_pushinteger(L, static_cast<lua_Integer>(done));
      lua_pushinteger(L, static_cast<lua_Integer>(total));
      if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
    };
  }
  DownloadResult r = download(url, path, o);
  lua_createtable(L, 0, 2);
  set_field(L, "bytes", static_cast<lua_Integer>(r.bytes));
  set_field(L, "sha256", r.sha256);
  return 1;
}

int open_http(lua_State* L) {
  static const luaL_Reg fns[] = {{"fetch", protect<l_fetch>}, {"download", protect<l_download>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(http, open_http);
}  // namespace banger::lua
