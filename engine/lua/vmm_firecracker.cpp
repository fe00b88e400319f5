#include "engine/lua/vmm_firecracker.hpp"

#include "engine/lua/binding.hpp"
#include "engine/vmm/firecracker.hpp"

namespace banger::lua {

int firecracker_snapshot(lua_State* L, const vmm::Handles& h, int files_idx) {
  check_table(L, files_idx);
  vmm::firecracker::SnapshotFiles files;
  files.state = field_string(L, files_idx, "state").value_or("");
  files.ram = field_string(L, files_idx, "ram").value_or("");
  files.sync = field_boolean(L, files_idx, "sync").value_or(true);
  for_each_table(L, files_idx, "disks", [&](int d, lua_Integer) {
    // `next` (QEMU's overlay) has no use here: firecracker goes on writing `current`.
    files.disks.push_back({field_string(L, d, "id").value_or(""), field_string(L, d, "current").value_or(""),
                           field_string(L, d, "layer").value_or("")});
  });

  vmm::firecracker::SnapshotStats st = vmm::firecracker::snapshot(h, files);
  lua_createtable(L, 0, 8);
  lua_pushnumber(L, st.pause_ms_so_far);
  lua_setfield(L, -2, "pause_ms_so_far");
  lua_pushnumber(L, st.create_ms);
  lua_setfield(L, -2, "create_ms");
  lua_pushnumber(L, st.disks_ms);
  lua_setfield(L, -2, "disks_ms");
  set_field(L, "state_bytes", static_cast<lua_Integer>(st.state_bytes));
  set_field(L, "ram_bytes", static_cast<lua_Integer>(st.ram_bytes));
  set_field(L, "ram", "file");
  lua_createtable(L, static_cast<int>(st.disks.size()), 0);
  for (size_t i = 0; i < st.disks.size(); ++i) {
    lua_createtable(L, 0, 5);
    set_field(L, "id", st.disks[i].id);
    set_field(L, "layer", st.disks[i].layer);
    set_field(L, "method", st.disks[i].method);
    set_field(L, "bytes", static_cast<lua_Integer>(st.disks[i].bytes));
    lua_pushnumber(L, st.disks[i].ms);
    lua_setfield(L, -2, "ms");
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "disks");
  return 1;
}

int firecracker_hotplug_disk(lua_State* L, const vmm::Handles& h, int disk_idx) {
  check_table(L, disk_idx);
  vmm::firecracker::hotplug_disk(h, field_string(L, disk_idx, "id").value_or(""));
}

int firecracker_block_files(lua_State* L, const vmm::Handles& h) {
  auto files = vmm::firecracker::block_files(h);
  lua_createtable(L, 0, static_cast<int>(files.size()));
  for (const auto& [id, file] : files) set_field(L, id.c_str(), file);
  return 1;
}

}  // namespace banger::lua
