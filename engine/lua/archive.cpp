// banger.native.archive: tar for workspaces (engine/archive/tar.hpp).
//   archive.create(tar_path, root, files) -> entries written
//   archive.extract(tar_path, dest[, max_bytes[, {zstd=, strict=}]]) -> {entries=, skipped=, bytes=}
//     (archive::ExtractOptions: zstd= also reads .tar.zst, strict= refuses
//     what a release bundle never holds instead of skipping it)
#include "engine/archive/tar.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

int l_create(lua_State* L) {
  auto path = check_string(L, 1);
  auto root = check_string(L, 2);
  auto files = check_string_list(L, 3);
  lua_pushinteger(L, static_cast<lua_Integer>(archive::create_tar(path, root, files)));
  return 1;
}

int l_extract(lua_State* L) {
  auto path = check_string(L, 1);
  auto dest = check_string(L, 2);
  archive::ExtractOptions o;
  o.max_bytes = opt_int<std::uint64_t>(L, 3).value_or(o.max_bytes);
  if (!lua_isnoneornil(L, 4)) {
    check_table(L, 4);
    o.zstd = field_boolean(L, 4, "zstd").value_or(false);
    o.strict = field_boolean(L, 4, "strict").value_or(false);
  }
  auto r = archive::extract_tar(path, dest, o);
  lua_createtable(L, 0, 3);
  set_field(L, "entries", static_cast<lua_Integer>(r.entries));
  set_field(L, "skipped", static_cast<lua_Integer>(r.skipped));
  set_field(L, "bytes", static_cast<lua_Integer>(r.bytes));
  return 1;
}

int open_archive(lua_State* L) {
  static const luaL_Reg fns[] = {{"create", protect<l_create>}, {"extract", protect<l_extract>}, {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(archive, open_archive);
}  // namespace banger::lua
