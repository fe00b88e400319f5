// banger.native.vmm: hypervisor drivers (engine/vmm/).
//   vmm.detect() -> host capabilities and hypervisor binaries
//   vmm.launch(driver, spec [, on_stage]) -> handles (a plain table, saved to handles.json)
//   vmm.isolated_request(spec, accel) -> params, fds; vmm.isolated_handles(spec, pid, argv) -> handles;
//   vmm.adopt_isolated(spec, pid, argv [, on_stage]) -> handles once QMP answers
//     (QEMU launched by the root helper as a uid of its own)
//   vmm.status(handles) -> "running" | "paused" | "stopped" | "unknown"
//   vmm.shutdown(handles, grace_ms) -> true if the guest stopped by itself
//   vmm.alive(handles), vmm.kill(handles), vmm.pause(handles), vmm.resume(handles)
//   vmm.qmp_quit(socket [, timeout_ms]) -> whether a QEMU listened there (it has quit)
//   vmm.qcow2_overlay(base, overlay [, size [, base_format]]); vmm.clone_disk(src, dst [, size])
//   vmm.snapshot(handles, { state =, ram =, disks = { {id, current, layer, next [, format]}, ... } [, sync = bool] })
//       -> stats { pause_ms_so_far, state_bytes, ram_bytes, ram = "file"|"stream", disks_ms, migrate_ms,
//                  ram_copy_ms, sync_ms, disks = { {id, layer, next, node}, ... } }; the VM is left paused
//   vmm.hotplug_disk(handles, { id =, path =, format = "raw"|"qcow2", serial =, read_only = }) -> true
//   vmm.block_files(handles) -> { [device id] = file of its active layer }
// spec (launch, isolated_request, adopt_isolated) may carry memory_file, memory_shared, generation and
// restore = { state = path, ram = "file"|"stream" }: a restore returns with the VM paused.
#include "engine/vmm/disk_clone.hpp"
#include "engine/vmm/driver.hpp"
#include "engine/vmm/host_caps.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_isolated.hpp"
#include "engine/vmm/qemu_snapshot.hpp"

#include "engine/lua/binding.hpp"
#include "engine/lua/callback.hpp"
#include "engine/lua/fd_handle.hpp"
#include "engine/lua/json_value.hpp"
#include "engine/lua/vmm_firecracker.hpp"

namespace banger::lua {
namespace {

using vmm::AgentTransport;

const char* kind_name(AgentTransport::Kind k) {
  switch (k) {
    case AgentTransport::Kind::vsock_uds: return "vsock_uds";
    case AgentTransport::Kind::vsock: return "vsock";
    case AgentTransport::Kind::serial_socket: return "serial_socket";
    case AgentTransport::Kind::none: return "none";
  }
  return "none";
}

AgentTransport::Kind kind_from(const std::string& s) {
  if (s == "vsock_uds") return AgentTransport::Kind::vsock_uds;
  if (s == "vsock") return AgentTransport::Kind::vsock;
  if (s == "serial_socket") return AgentTransport::Kind::serial_socket;
  if (s == "none" || s.empty()) return AgentTransport::Kind::none;
  throw Raise("unknown agent transport '" + s + "'");
}

AgentTransport agent_from(lua_State* L, int idx) {
  AgentTransport a;
  if (push_table_field(L, idx, "agent")) {
    int t = lua_gettop(L);
    a.kind = kind_from(field_string(L, t, "kind").value_or("none"));
    a.path = field_string(L, t, "path").value_or("");
    a.cid = field_int<std::uint32_t>(L, t, "cid").value_or(0);
    a.port = field_int<std::uint32_t>(L, t, "port").value_or(52);
    lua_pop(L, 1);
  }
  return a;
}

void push_agent(lua_State* L, const AgentTransport& a) {
  lua_createtable(L, 0, 4);
  set_field(L, "kind", kind_name(a.kind));
  if (!a.path.empty()) set_field(L, "path", a.path);
  if (a.cid) set_field(L, "cid", static_cast<lua_Integer>(a.cid));
  set_field(L, "port", static_cast<lua_Integer>(a.port));
}

vmm::Handles handles_from(lua_State* L, int idx) {
  check_table(L, idx);
  vmm::Handles h;
  h.driver = field_string(L, idx, "driver").value_or("");
  h.pid = field_int<pid_t>(L, idx, "pid", -1).value_or(-1);
  h.cmdline = field_string_list(L, idx, "cmdline").value_or(std::vector<std::string>{});
  h.control_socket = field_string(L, idx, "control_socket").value_or("");
  h.agent = agent_from(L, idx);
  h.launcher = field_string(L, idx, "launcher").value_or("");
  h.memory_file = field_string(L, idx, "memory_file").value_or("");
  h.memory_shared = field_boolean(L, idx, "memory_shared").value_or(false);
  return h;
}

void push_handles(lua_State* L, const vmm::Handles& h) {
  lua_createtable(L, 0, 5);
  set_field(L, "driver", h.driver);
  set_field(L, "pid", static_cast<lua_Integer>(h.pid));
  push_string_list(L, h.cmdline);
  lua_setfield(L, -2, "cmdline");
  set_field(L, "control_socket", h.control_socket);
  push_agent(L, h.agent);
  lua_setfield(L, -2, "agent");
  if (!h.launcher.empty()) set_field(L, "launcher", h.launcher);
  if (!h.memory_file.empty()) {
    set_field(L, "memory_file", h.memory_file);
    set_field_bool(L, "memory_shared", h.memory_shared);
  }
}

vmm::VmSpec spec_from(lua_State* L, int idx) {
  check_table(L, idx);
  vmm::VmSpec s;
  s.id = field_string(L, idx, "id").value_or("");
  s.name = field_string(L, idx, "name").value_or("");
  s.vcpus = field_int<int>(L, idx, "vcpus", 1).value_or(1);
  s.memory_mib = field_int<int>(L, idx, "memory_mib", 1).value_or(256);
  s.kernel = field_string(L, idx, "kernel").value_or("");
  s.initrd = field_string(L, idx, "initrd").value_or("");
  s.cmdline = field_string(L, idx, "cmdline").value_or("");
  s.binary = field_string(L, idx, "binary").value_or("");
  s.vm_dir = field_string(L, idx, "vm_dir").value_or("");
  s.runtime_dir = field_string(L, idx, "runtime_dir").value_or("");
  s.console_log = field_string(L, idx, "console_log").value_or("");
  s.accel = field_string(L, idx, "accel").value_or("auto");
  s.agent = agent_from(L, idx);
  s.memory_file = field_string(L, idx, "memory_file").value_or("");
  s.memory_shared = field_boolean(L, idx, "memory_shared").value_or(true);
  s.generation = field_string(L, idx, "generation").value_or("");
  if (push_table_field(L, idx, "restore")) {
    int t = lua_gettop(L);
    s.restore.state = field_string(L, t, "state").value_or("");
    s.restore.ram = field_string(L, t, "ram").value_or("file");
    if (s.restore.state.empty()) throw Raise("spec.restore needs a state file");
    lua_pop(L, 1);
  }
  for_each_table(L, idx, "disks", [&](int d, lua_Integer i) {
    vmm::DiskSpec disk;
    disk.id = field_string(L, d, "id").value_or("disk" + std::to_string(i));
    disk.path = field_string(L, d, "path").value_or("");
    disk.format = field_string(L, d, "format").value_or("raw");
    disk.read_only = field_boolean(L, d, "read_only").value_or(false);
    disk.root = field_boolean(L, d, "root").value_or(false);
    disk.serial = field_string(L, d, "serial").value_or("");
    s.disks.push_back(disk);
  });
  for_each_table(L, idx, "nics", [&](int n, lua_Integer i) {
    vmm::NicSpec nic;
    nic.id = field_string(L, n, "id").value_or("eth" + std::to_string(i - 1));
    nic.tap = field_string(L, n, "tap").value_or("");
    nic.mac = field_string(L, n, "mac").value_or("");
    if (push_raw_field(L, n, "fd") != LUA_TNIL) nic.tap_fd = check_fd(L, lua_gettop(L));
    lua_pop(L, 1);
    s.nics.push_back(nic);
  });
  return s;
}

int l_detect(lua_State* L) {
  vmm::HostCaps c = vmm::detect_host();
  lua_createtable(L, 0, 9);
  set_field_bool(L, "kvm_device", c.kvm_device);
  set_field_bool(L, "kvm_hardware", c.kvm_hardware);
  set_field_bool(L, "kvm_pvm", c.kvm_pvm);
  set_field_bool(L, "kvm_usable", c.kvm_usable());
  set_field_bool(L, "vhost_vsock", c.vhost_vsock);
  set_field_bool(L, "tun", c.tun);
  return 1;
}

int l_find_executable(lua_State* L) {
  std::string p = vmm::find_executable(check_string(L, 1));
  if (p.empty()) lua_pushnil(L);
  else push_string(L, p);
  return 1;
}

// The optional stage hook at `idx`, on_stage(name, detail). It runs on this
// thread; its error unwinds the driver (killing the half-started VM) and
// reaches the caller as it was raised.
vmm::StageFn stage_from(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return {};
  if (lua_type(L, idx) != LUA_TFUNCTION) raise_arg(L, idx, "function");
  Callback fn{L, idx};
  return [fn](const std::string& name, const std::string& detail) {
    fn([&](lua_State* S) {
      push_string(S, name);
      push_string(S, detail);
      return 2;
    });
  };
}

int l_launch(lua_State* L) {
  std::string driver_name = check_string(L, 1);
  vmm::VmSpec spec = spec_from(L, 2);
  auto driver = vmm::make_driver(driver_name);
  vmm::Handles h = driver->launch(spec, stage_from(L, 3));
  push_handles(L, h);
  return 1;
}

// isolated_request(spec, accel) -> params, { fd handles }: what launch_vmm
// needs, opened by us (engine/vmm/qemu_isolated.hpp).
int l_isolated_request(lua_State* L) {
  vmm::VmSpec spec = spec_from(L, 1);
  vmm::IsolatedRequest r = vmm::isolated_request(spec, check_string(L, 2) == "kvm");
  push_json(L, r.params);
  lua_createtable(L, static_cast<int>(r.fds.size()), 0);
  for (size_t i = 0; i < r.fds.size(); ++i) {
    push_fd(L, std::move(r.fds[i]));
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  return 2;
}

// isolated_handles(spec, pid, argv) -> handles, at once
int l_isolated_handles(lua_State* L) {
  push_handles(L, vmm::isolated_handles(spec_from(L, 1), check_int<pid_t>(L, 2, 1), check_string_list(L, 3)));
  return 1;
}

// adopt_isolated(spec, pid, argv [, on_stage]) -> handles, once QMP answers
int l_adopt_isolated(lua_State* L) {
  push_handles(L, vmm::adopt_isolated(spec_from(L, 1), check_int<pid_t>(L, 2, 1), check_string_list(L, 3),
                                      stage_from(L, 4)));
  return 1;
}

int l_status(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  lua_pushstring(L, vmm::to_string(vmm::make_driver(h.driver)->status(h)));
  return 1;
}

int l_shutdown(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  auto grace = std::chrono::milliseconds(opt_int<lua_Integer>(L, 2, 0).value_or(10000));
  lua_pushboolean(L, vmm::make_driver(h.driver)->shutdown(h, grace));
  return 1;
}

int l_alive(lua_State* L) {
  lua_pushboolean(L, vmm::alive(handles_from(L, 1)));
  return 1;
}

int l_kill(lua_State* L) {
  vmm::kill(handles_from(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_pause(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  vmm::make_driver(h.driver)->pause(h);
  lua_pushboolean(L, 1);
  return 1;
}

int l_resume(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  vmm::make_driver(h.driver)->resume(h);
  lua_pushboolean(L, 1);
  return 1;
}

// qmp_quit(socket [, timeout_ms]) -> true when a QEMU listening there quit, false when none listened
int l_qmp_quit(lua_State* L) {
  lua_pushboolean(L, vmm::qmp_quit(check_string(L, 1), std::chrono::milliseconds(opt_int<lua_Integer>(L, 2, 0).value_or(5000))));
  return 1;
}

int l_qcow2_overlay(lua_State* L) {
  std::string base = check_string(L, 1), overlay = check_string(L, 2);
  vmm::create_qcow2_overlay(base, overlay, static_cast<long long>(opt_size(L, 3).value_or(0)),
                            opt_string(L, 4).value_or("raw"));
  lua_pushboolean(L, 1);
  return 1;
}

// clone_disk(src, dst[, size]) -> {method = "reflink"|"sparse_copy", size, bytes_written}
int l_clone_disk(lua_State* L) {
  std::string src = check_string(L, 1), dst = check_string(L, 2);
  vmm::CloneResult r = vmm::clone_disk(src, dst, opt_size(L, 3).value_or(0));
  lua_createtable(L, 0, 3);
  set_field(L, "method", r.method == vmm::CloneMethod::reflink ? "reflink" : "sparse_copy");
  set_field(L, "size", static_cast<lua_Integer>(r.size));
  set_field(L, "bytes_written", static_cast<lua_Integer>(r.bytes_written));
  return 1;
}

// vmm.snapshot, vmm.hotplug_disk, vmm.block_files: per driver (firecracker:
// engine/lua/vmm_firecracker.cpp; QEMU: engine/vmm/qemu_snapshot.hpp, over QMP).
void require_qemu(const vmm::Handles& h, const char* what) {
  if (h.driver != "qemu") throw Error("ENOTSUP", std::string(what) + " is not available for " + h.driver + " VMs");
}

int l_snapshot(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  if (h.driver == "firecracker") return firecracker_snapshot(L, h, 2);
  check_table(L, 2);
  require_qemu(h, "vmm.snapshot");
  vmm::SnapshotFiles f;
  f.state = field_string(L, 2, "state").value_or("");
  f.ram = field_string(L, 2, "ram").value_or("");
  f.sync = field_boolean(L, 2, "sync").value_or(true);
  for_each_table(L, 2, "disks", [&](int d, lua_Integer) {
    f.disks.push_back({field_string(L, d, "id").value_or(""), field_string(L, d, "current").value_or(""),
                       field_string(L, d, "layer").value_or(""), field_string(L, d, "next").value_or(""),
                       field_string(L, d, "format").value_or("")});
  });
  vmm::SnapshotStats st = vmm::qemu_snapshot(h, f);
  lua_createtable(L, 0, 10);
  set_field(L, "pause_ms_so_far", static_cast<lua_Integer>(st.pause_ms_so_far));
  set_field(L, "disks_ms", static_cast<lua_Integer>(st.disks_ms));
  set_field(L, "migrate_ms", static_cast<lua_Integer>(st.migrate_ms));
  set_field(L, "ram_copy_ms", static_cast<lua_Integer>(st.ram_copy_ms));
  set_field(L, "sync_ms", static_cast<lua_Integer>(st.sync_ms));
  set_field(L, "state_bytes", static_cast<lua_Integer>(st.state_bytes));
  set_field(L, "ram_bytes", static_cast<lua_Integer>(st.ram_bytes));
  set_field(L, "ram", st.ram);
  lua_createtable(L, static_cast<int>(st.disks.size()), 0);
  for (size_t i = 0; i < st.disks.size(); ++i) {
    lua_createtable(L, 0, 4);
    set_field(L, "id", st.disks[i].id);
    set_field(L, "layer", st.disks[i].layer);
    set_field(L, "next", st.disks[i].next);
    set_field(L, "node", st.disks[i].node);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "disks");
  return 1;
}

int l_hotplug_disk(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  if (h.driver == "firecracker") return firecracker_hotplug_disk(L, h, 2);
  check_table(L, 2);
  require_qemu(h, "disk hot-plug");
  vmm::HotplugDisk d;
  d.id = field_string(L, 2, "id").value_or("");
  d.path = field_string(L, 2, "path").value_or("");
  d.format = field_string(L, 2, "format").value_or("raw");
  d.serial = field_string(L, 2, "serial").value_or(d.id);
  d.read_only = field_boolean(L, 2, "read_only").value_or(false);
  vmm::qemu_hotplug_disk(h, d);
  lua_pushboolean(L, 1);
  return 1;
}

int l_block_files(lua_State* L) {
  vmm::Handles h = handles_from(L, 1);
  if (h.driver == "firecracker") return firecracker_block_files(L, h);
  require_qemu(h, "vmm.block_files");
  auto files = vmm::qemu_block_files(h);
  lua_createtable(L, 0, static_cast<int>(files.size()));
  for (const auto& [id, file] : files) set_field(L, id.c_str(), file);
  return 1;
}

int open_vmm(lua_State* L) {
  static const luaL_Reg fns[] = {{"detect", protect<l_detect>},
                                 {"find_executable", protect<l_find_executable>},
                                 {"launch", protect<l_launch>},
                                 {"isolated_request", protect<l_isolated_request>},
                                 {"isolated_handles", protect<l_isolated_handles>},
                                 {"adopt_isolated", protect<l_adopt_isolated>},
                                 {"status", protect<l_status>},
                                 {"shutdown", protect<l_shutdown>},
                                 {"alive", protect<l_alive>},
                                 {"kill", protect<l_kill>},
                                 {"pause", protect<l_pause>},
                                 {"resume", protect<l_resume>},
                                 {"qmp_quit", protect<l_qmp_quit>},
                                 {"qcow2_overlay", protect<l_qcow2_overlay>},
                                 {"clone_disk", protect<l_clone_disk>},
                                 {"snapshot", protect<l_snapshot>},
                                 {"hotplug_disk", protect<l_hotplug_disk>},
                                 {"block_files", protect<l_block_files>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(vmm, open_vmm);
}  // namespace banger::lua
