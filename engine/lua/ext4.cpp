// banger.native.ext4: ext4 images without mounting (engine/ext4/).
//   ext4.create(path, size [, {label=, journal=true, grow_to=size}]) -> fs
//       (sizes: integer bytes or "64MiB"-style strings, engine/core/size.hpp)
//       (mkfs, then open read-write; grow_to lets layers grow it up to that size)
//   ext4.open(path [, {write=true}]) -> fs
//   fs:read(p) fs:write(p, data, {uid,gid,mode,mtime}) fs:mkdir(p, {parents,uid,gid,mode})
//   fs:exists(p) fs:stat(p) fs:list(p) fs:chown(p, uid, gid) fs:chmod(p, mode)
//   fs:remove(p, {recursive=}) fs:symlink(target, p, {uid,gid}) fs:close()
//   fs:apply_layer(tar_path_or_stream [, {max_file_bytes=, on_progress=function(entries, bytes)}])
//       -> {entries=, bytes=, whiteouts=, content=} (OCI layer rules, engine/ext4/populate.hpp)
//   fs:resize(size) -> new size in bytes (never below what the content needs)
//   fs:add_journal()  fs:size() -> bytes
//   ext4.measure_layer(tar) -> bytes the layer's content needs
//   ext4.grow(path, size) -> new size in bytes (a closed image; never shrinks: EINVAL)
#include "engine/core/byte_source.hpp"
#include "engine/ext4/filesystem.hpp"
#include "engine/ext4/populate.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/lua/stream.hpp"

namespace banger::lua {
template <>
struct HandleTraits<ext4::Filesystem> {
  static constexpr const char* name = "banger.ext4.fs";
  static std::string describe(const ext4::Filesystem& f) { return f.path(); }
  // HandleTraits' explicit close flushes and reports errors.
};

namespace {

using FS = ext4::Filesystem;

ext4::Owner owner_from(lua_State* L, int idx, std::uint32_t default_mode) {
  ext4::Owner o;
  o.uid = field_int<std::uint32_t>(L, idx, "uid").value_or(0);
  o.gid = field_int<std::uint32_t>(L, idx, "gid").value_or(0);
  o.mode = field_int<std::uint32_t>(L, idx, "mode", 0, kMaxMode).value_or(default_mode);
  o.mtime = field_integer(L, idx, "mtime").value_or(ext4::Owner::now);
  return o;
}

int l_create(lua_State* L) {
  std::string path = check_string(L, 1);
  std::uint64_t size = check_size(L, 2);
  auto limit = field_size(L, 3, "grow_to");
  auto fs = FS::create(path, size, field_string(L, 3, "label").value_or(""), field_boolean(L, 3, "journal").value_or(true));
  if (limit) fs->set_growth_limit(*limit);
  push_handle(L, std::move(fs));
  return 1;
}

int l_open(lua_State* L) {
  push_handle(L, FS::open(check_string(L, 1), field_boolean(L, 2, "write").value_or(false)));
  return 1;
}

int l_read(lua_State* L) {
  push_string(L, check_handle<FS>(L, 1).read(check_string(L, 2)));
  return 1;
}

int l_write(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  std::string path = check_string(L, 2), data = check_string(L, 3);
  fs.write(path, data, owner_from(L, 4, 0644));
  lua_pushboolean(L, 1);
  return 1;
}

int l_mkdir(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  std::string path = check_string(L, 2);
  fs.mkdir(path, owner_from(L, 3, 0755), field_boolean(L, 3, "parents").value_or(false));
  lua_pushboolean(L, 1);
  return 1;
}

int l_exists(lua_State* L) {
  lua_pushboolean(L, check_handle<FS>(L, 1).exists(check_string(L, 2)));
  return 1;
}

int l_stat(lua_State* L) {
  auto s = check_handle<FS>(L, 1).stat(check_string(L, 2));
  if (!s) throw Error("ENOENT", "no " + check_string(L, 2) + " in the image");
  lua_createtable(L, 0, 9);
  set_field(L, "type", s->type);
  set_field(L, "mode", static_cast<lua_Integer>(s->mode));
  set_field(L, "uid", static_cast<lua_Integer>(s->uid));
  set_field(L, "gid", static_cast<lua_Integer>(s->gid));
  set_field(L, "size", static_cast<lua_Integer>(s->size));
  set_field(L, "mtime", static_cast<lua_Integer>(s->mtime));
  set_field(L, "nlink", static_cast<lua_Integer>(s->nlink));
  set_field(L, "ino", static_cast<lua_Integer>(s->ino));
  if (s->type == "symlink") set_field(L, "target", s->target);
  return 1;
}

int l_list(lua_State* L) {
  push_string_list(L, check_handle<FS>(L, 1).list(check_string(L, 2)));
  return 1;
}

int l_chown(lua_State* L) {
  check_handle<FS>(L, 1).chown(check_string(L, 2), check_int<std::uint32_t>(L, 3), check_int<std::uint32_t>(L, 4));
  lua_pushboolean(L, 1);
  return 1;
}

int l_chmod(lua_State* L) {
  check_handle<FS>(L, 1).chmod(check_string(L, 2), check_int<std::uint32_t>(L, 3, 0, kMaxMode));
  lua_pushboolean(L, 1);
  return 1;
}

int l_remove(lua_State* L) {
  check_handle<FS>(L, 1).remove(check_string(L, 2), field_boolean(L, 3, "recursive").value_or(false));
  lua_pushboolean(L, 1);
  return 1;
}

int l_symlink(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  std::string target = check_string(L, 2), path = check_string(L, 3);
  fs.symlink(target, path, owner_from(L, 4, 0777));
  lua_pushboolean(L, 1);
  return 1;
}

// fs:apply_layer(tar_path_or_stream [, opts]) -> {entries, bytes, whiteouts, content}
int l_apply_layer(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  std::unique_ptr<ByteSource> src =
      lua_type(L, 2) == LUA_TSTRING ? open_file_source(check_string(L, 2)) : take_stream(L, 2);
  ext4::PopulateOptions o;
  if (auto m = field_int<std::uint64_t>(L, 3, "max_file_bytes")) o.max_file_bytes = *m;
  lua_settop(L, 3);
  push_function_field(L, 3, "on_progress");  // 4
  if (Callback fn{L, 4}) {
    // Runs on this thread between entries; an error in it ends the layer
    // and reaches our caller as it was raised.
    o.progress = [fn](const ext4::LayerStats& st) {
      fn([&](lua_State* S) {
        lua_pushinteger(S, static_cast<lua_Integer>(st.entries));
        lua_pushinteger(S, static_cast<lua_Integer>(st.bytes));
        return 2;
      });
    };
  }
  ext4::LayerStats st = ext4::apply_layer(fs, *src, o);
  lua_createtable(L, 0, 4);
  set_field(L, "entries", static_cast<lua_Integer>(st.entries));
  set_field(L, "bytes", static_cast<lua_Integer>(st.bytes));
  set_field(L, "whiteouts", static_cast<lua_Integer>(st.whiteouts));
  set_field(L, "content", static_cast<lua_Integer>(st.content));
  return 1;
}

int l_resize(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(fs.resize(check_size(L, 2))));
  return 1;
}

int l_add_journal(lua_State* L) {
  check_handle<FS>(L, 1).add_journal();
  lua_pushboolean(L, 1);
  return 1;
}

int l_size(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_handle<FS>(L, 1).size_bytes()));
  return 1;
}

int l_measure_layer(lua_State* L) {
  auto src = open_file_source(check_string(L, 1));
  lua_pushinteger(L, static_cast<lua_Integer>(ext4::measure_layer(*src)));
  return 1;
}

int l_grow(lua_State* L) {
  std::string path = check_string(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(ext4::grow(path, check_size(L, 2))));
  return 1;
}

int l_get_xattr(lua_State* L) {
  auto& fs = check_handle<FS>(L, 1);
  push_string(L, fs.get_xattr(check_string(L, 2), check_string(L, 3)));
  return 1;
}

int open_ext4(lua_State* L) {
  static const luaL_Reg methods[] = {{"read", protect<l_read>},     {"write", protect<l_write>},
                                     {"mkdir", protect<l_mkdir>},   {"exists", protect<l_exists>},
                                     {"stat", protect<l_stat>},     {"list", protect<l_list>},
                                     {"chown", protect<l_chown>},   {"chmod", protect<l_chmod>},
                                     {"remove", protect<l_remove>}, {"symlink", protect<l_symlink>},
                                     {"apply_layer", protect<l_apply_layer>}, {"get_xattr", protect<l_get_xattr>},
                                     {"resize", protect<l_resize>},           {"add_journal", protect<l_add_journal>},
                                     {"size", protect<l_size>},               {nullptr, nullptr}};
  define_handle<FS>(L, methods);
  static const luaL_Reg fns[] = {{"create", protect<l_create>},
                                 {"open", protect<l_open>},
                                 {"measure_layer", protect<l_measure_layer>},
                                 {"grow", protect<l_grow>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(ext4, open_ext4);
}  // namespace banger::lua
