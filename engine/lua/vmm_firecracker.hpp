#pragma once
// The firecracker side of banger.native.vmm's snapshot natives (vmm.cpp
// dispatches on handles.driver). Each reads its arguments from the Lua
// stack and pushes its results; errors are thrown for protect<> to map.
//   vmm.snapshot(handles, { state =, ram =, disks = { { id =, current =, layer = [, next =] }, ... } [, sync = bool] })
//     -> { pause_ms_so_far, create_ms, disks_ms, state_bytes, ram_bytes, ram = "file",
//          disks = { { id, layer, method = "reflink"|"sparse_copy", bytes, ms }, ... } }; the VM is left paused
//   vmm.hotplug_disk(handles, disk) -> ENOTSUP
//   vmm.block_files(handles) -> { [drive id] = file }
#include <lua.hpp>

#include "engine/vmm/driver.hpp"

namespace banger::lua {

int firecracker_snapshot(lua_State* L, const vmm::Handles& h, int files_idx);
int firecracker_hotplug_disk(lua_State* L, const vmm::Handles& h, int disk_idx);
int firecracker_block_files(lua_State* L, const vmm::Handles& h);

}  // namespace banger::lua
