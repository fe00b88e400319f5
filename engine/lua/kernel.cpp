// banger.native.kernel: the kernel catalog (engine/kernel/).
//   kernel.import{source=, name=, kernels_dir=, agent=, busybox=, distro=, origin=, replace=} -> manifest
//   kernel.list(kernels_dir) -> {manifest...}; kernel.show(dir, name); kernel.remove(dir, name)
//   kernel.extract_vmlinux(src, dst); kernel.validate_name(name)
//   kernel.export{kernels_dir=, name=, output=, level=} -> {path=, size=, sha256=, manifest=}
//   kernel.import_bundle{source=, name=, kernels_dir=, origin=, replace=} -> manifest
//   kernel.staging(kernels_dir, name) -> handle (:path()): a hidden directory
//     for a download, removed at close, swept by the next one if its process dies
#include "engine/core/atomic_file.hpp"
#include "engine/core/read_file.hpp"
#include "engine/kernel/bundle.hpp"
#include "engine/kernel/bzimage.hpp"
#include "engine/kernel/catalog.hpp"
#include "engine/kernel/staging.hpp"
#include "engine/lua/binding.hpp"
#include "engine/lua/json_value.hpp"

namespace banger::lua {

template <>
struct HandleTraits<kernel::StagingDir> {
  static constexpr const char* name = "banger.kernel.staging";
  static std::string describe(const kernel::StagingDir& d) { return d.path(); }
};

namespace {

int l_import(lua_State* L) {
  check_table(L, 1);
  kernel::ImportOptions o;
  o.source = field_string(L, 1, "source").value_or("");
  o.name = field_string(L, 1, "name").value_or("");
  o.kernels_dir = field_string(L, 1, "kernels_dir").value_or("");
  o.agent = field_string(L, 1, "agent").value_or("");
  o.busybox = field_string(L, 1, "busybox").value_or("/bin/busybox");
  o.distro = field_string(L, 1, "distro").value_or("");
  o.origin = field_string(L, 1, "origin").value_or("");
  o.replace = field_boolean(L, 1, "replace").value_or(false);
  if (o.source.empty() || o.kernels_dir.empty() || o.agent.empty()) {
    throw Raise("kernel.import needs source=, kernels_dir= and agent=");
  }
  push_json(L, kernel::import_kernel(o));
  return 1;
}

int l_list(lua_State* L) {
  push_json(L, nlohmann::json(kernel::list_kernels(check_string(L, 1))));
  push_array_mark(L);
  lua_setmetatable(L, -2);
  return 1;
}

int l_show(lua_State* L) {
  push_json(L, kernel::show_kernel(check_string(L, 1), check_string(L, 2)));
  return 1;
}

int l_remove(lua_State* L) {
  kernel::remove_kernel(check_string(L, 1), check_string(L, 2));
  lua_pushboolean(L, 1);
  return 1;
}

int l_extract_vmlinux(lua_State* L) {
  std::string src = check_string(L, 1), dst = check_string(L, 2);
  atomic_write_file(dst, kernel::extract_vmlinux(read_file(src)), 0644);
  lua_pushboolean(L, 1);
  return 1;
}

int l_validate_name(lua_State* L) {
  kernel::validate_name(check_string(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_export(lua_State* L) {
  check_table(L, 1);
  std::string dir = field_string(L, 1, "kernels_dir").value_or("");
  std::string name = field_string(L, 1, "name").value_or("");
  std::string output = field_string(L, 1, "output").value_or("");
  auto level = field_int<int>(L, 1, "level").value_or(9);
  if (dir.empty() || name.empty() || output.empty()) throw Raise("kernel.export needs kernels_dir=, name= and output=");
  kernel::ExportResult r = kernel::export_bundle(dir, name, output, level);
  lua_createtable(L, 0, 4);
  set_field(L, "path", r.path);
  set_field(L, "size", static_cast<lua_Integer>(r.size));
  set_field(L, "sha256", r.sha256);
  push_json(L, r.manifest);
  lua_setfield(L, -2, "manifest");
  return 1;
}

int l_import_bundle(lua_State* L) {
  check_table(L, 1);
  kernel::BundleImportOptions o;
  o.bundle = field_string(L, 1, "source").value_or("");
  o.name = field_string(L, 1, "name").value_or("");
  o.kernels_dir = field_string(L, 1, "kernels_dir").value_or("");
  o.origin = field_string(L, 1, "origin").value_or("");
  o.replace = field_boolean(L, 1, "replace").value_or(false);
  if (o.bundle.empty() || o.kernels_dir.empty()) throw Raise("kernel.import_bundle needs source= and kernels_dir=");
  push_json(L, kernel::import_bundle(o));
  return 1;
}

int l_staging(lua_State* L) {
  std::string dir = check_string(L, 1);
  std::string name = check_string(L, 2);
  kernel::validate_name(name);
  push_handle(L, std::make_unique<kernel::StagingDir>(dir, name, ".pull"));
  return 1;
}

int l_staging_path(lua_State* L) {
  push_string(L, check_handle<kernel::StagingDir>(L, 1).path());
  return 1;
}

int open_kernel(lua_State* L) {
  static const luaL_Reg staging_methods[] = {{"path", protect<l_staging_path>}, {nullptr, nullptr}};
  define_handle<kernel::StagingDir>(L, staging_methods);
  static const luaL_Reg fns[] = {{"import", protect<l_import>},
                                 {"list", protect<l_list>},
                                 {"show", protect<l_show>},
                                 {"remove", protect<l_remove>},
                                 {"extract_vmlinux", protect<l_extract_vmlinux>},
                                 {"validate_name", protect<l_validate_name>},
                                 {"export", protect<l_export>},
                                 {"import_bundle", protect<l_import_bundle>},
                                 {"staging", protect<l_staging>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(kernel, open_kernel);
}  // namespace banger::lua
