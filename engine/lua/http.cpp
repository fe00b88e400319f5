// banger.native.http: downloads through libcurl (engine/core/download.hpp).
//   http.fetch(url [, {max_bytes=}]) -> body
//   http.download{url=, path=, sha256=, size=, max_bytes=, on_progress=function(done, total)} -> {bytes=, sha256=}
#include "engine/core/download.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"

namespace banger::lua {
namespace {

int l_fetch(lua_State* L) {
  std::string url = check_string(L, 1);
  auto max = field_int<std::uint64_t>(L, 2, "max_bytes").value_or(16 << 20);
  push_string(L, fetch_text(url, max));
  return 1;
}

int l_download(lua_State* L) {
  check_table(L, 1);
  std::string url = field_string(L, 1, "url").value_or("");
  std::string path = field_string(L, 1, "path").value_or("");
  if (url.empty() || path.empty()) throw Raise("http.download needs url= and path=");
  DownloadOptions o;
  o.expected_sha256 = field_string(L, 1, "sha256").value_or("");
  o.max_bytes = field_int<std::uint64_t>(L, 1, "max_bytes").value_or(0);
  o.expected_size = field_int<std::uint64_t>(L, 1, "size").value_or(0);
  lua_settop(L, 1);
  push_function_field(L, 1, "on_progress");  // 2
  if (Callback fn{L, 2}) {
    // Runs on this thread, inside curl's progress callback: download()
    // stops the transfer on its error and rethrows it once curl returned.
    o.progress = [fn](std::uint64_t done, std::uint64_t total) {
      fn([&](lua_State* S) {
        lua_pushinteger(S, static_cast<lua_Integer>(done));
        lua_pushinteger(S, static_cast<lua_Integer>(total));
        return 2;
      });
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
