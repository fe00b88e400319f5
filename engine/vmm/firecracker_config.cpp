#include "engine/vmm/firecracker_config.hpp"

#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "engine/core/error.hpp"

namespace banger::vmm::firecracker {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& what) { throw Error("EINVAL", "firecracker: " + what); }

bool is_absolute(const std::string& p) { return !p.empty() && p[0] == '/'; }

void require_absolute(const std::string& field, const std::string& p) {
  if (!is_absolute(p)) invalid(field + " must be an absolute path (got '" + p + "')");
}

// Firecracker's --id: letters, digits and hyphens, 1 to 64 characters.
void check_instance_id(const std::string& id) {
  if (id.empty() || id.size() > 64) invalid("VM id must be 1 to 64 characters (got '" + id + "')");
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-') invalid("VM id may hold only letters, digits and '-' (got '" + id + "')");
  }
}

// API resource ids (drives, interfaces): letters, digits and '_'.
void check_resource_id(const std::string& kind, const std::string& id) {
  bool ok = !id.empty() && std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
  if (!ok) invalid(kind + " id '" + id + "' may hold only letters, digits and '_'");
}

void check_mac(const std::string& mac) {
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    ok = (i % 3 == 2) ? mac[i] == ':' : std::isxdigit(static_cast<unsigned char>(mac[i])) != 0;
  }
  if (!ok) invalid("MAC address '" + mac + "' is not of the form xx:xx:xx:xx:xx:xx");
}

void check_socket_path(const std::string& p) {
  if (p.size() >= sizeof(sockaddr_un::sun_path)) invalid("socket path too long for a Unix socket: " + p);
}

std::string parent_of(const std::string& p) {
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? std::string() : p.substr(0, slash);
}

std::string trim_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

Layout layout_for(const VmSpec& spec) {
  Layout l;
  std::string rt = trim_slash(spec.runtime_dir);
  std::string vm = trim_slash(spec.vm_dir);
  l.api_socket = rt + "/fc.sock";
  if (spec.agent.kind == AgentTransport::Kind::vsock_uds) {
    l.vsock_socket = spec.agent.path.empty() ? rt + "/fc.vsock" : spec.agent.path;
  }
  l.log = vm + "/firecracker.log";
  l.metrics = vm + "/firecracker.metrics";
  l.console = spec.console_log.empty() ? vm + "/console.log" : spec.console_log;
  return l;
}

namespace {

void validate_devices(const VmSpec& spec) {
  std::set<std::string> ids;
  int roots = 0;
  for (const auto& d : spec.disks) {
    check_resource_id("drive", d.id);
    if (!ids.insert(d.id).second) invalid("drive id '" + d.id + "' is used twice");
    require_absolute("drive " + d.id, d.path);
    if (d.format != "raw") invalid("drive " + d.id + ": format " + d.format + " is not supported (raw only)");
    roots += d.root ? 1 : 0;
  }
  if (roots > 1) invalid("more than one root drive");

  std::set<std::string> nic_ids, taps;
  for (const auto& n : spec.nics) {
    check_resource_id("network interface", n.id);
    if (!nic_ids.insert(n.id).second) invalid("network interface id '" + n.id + "' is used twice");
    if (n.tap.empty() || n.tap.size() > 15) invalid("network interface " + n.id + ": tap name must be 1 to 15 characters");
    if (!taps.insert(n.tap).second) invalid("tap " + n.tap + " is used twice");
    if (!n.mac.empty()) check_mac(n.mac);
  }
}

void validate_boot(const VmSpec& spec) {
  if (spec.vcpus < 1 || spec.vcpus > 32 || (spec.vcpus > 1 && spec.vcpus % 2 != 0)) {
    invalid("vcpus must be 1 or an even number up to 32 (got " + std::to_string(spec.vcpus) + ")");
  }
  if (spec.memory_mib <= 0) invalid("memory must be > 0 MiB (got " + std::to_string(spec.memory_mib) + ")");
  require_absolute("kernel", spec.kernel);
  if (!spec.initrd.empty()) require_absolute("initrd", spec.initrd);
  if (!spec.memory_file.empty()) {
    invalid("memory_file is for restores only: a fresh Firecracker VM runs on anonymous memory, and a snapshot "
            "writes its RAM to the snapshot's own file");
  }
}

void validate_restore(const VmSpec& spec) {
  require_absolute("restore.state", spec.restore.state);
  if (spec.restore.ram != "file") {
    invalid("restore.ram must be 'file' (got '" + spec.restore.ram + "'): a firecracker snapshot keeps guest RAM in "
            "a file of its own, never in the state stream");
  }
  if (spec.memory_file.empty()) invalid("a restore needs memory_file: the snapshot's RAM file");
  require_absolute("memory_file", spec.memory_file);
  // memory_shared is not looked at: Firecracker always maps the file privately.
}

}  // namespace

void validate(const VmSpec& spec) {
  if (spec.binary.empty()) invalid("no firecracker binary given");
  check_instance_id(spec.id);
  require_absolute("runtime_dir", spec.runtime_dir);
  require_absolute("vm_dir", spec.vm_dir);
  if (!spec.console_log.empty()) require_absolute("console_log", spec.console_log);
  Layout l = layout_for(spec);
  check_socket_path(l.api_socket);

  using Kind = AgentTransport::Kind;
  if (spec.agent.kind != Kind::none && spec.agent.kind != Kind::vsock_uds) {
    invalid("the agent transport must be vsock_uds (firecracker has no serial socket or host vsock)");
  }
  if (spec.agent.kind == Kind::vsock_uds) {
    if (spec.agent.cid < 3) invalid("vsock guest CID must be >= 3 (got " + std::to_string(spec.agent.cid) + ")");
    if (spec.agent.cid == 0xffffffffu) invalid("vsock guest CID 4294967295 is reserved");
    // The vsock socket lives beside the API socket, in the private runtime dir.
    if (parent_of(l.vsock_socket) != trim_slash(spec.runtime_dir)) {
      invalid("vsock socket " + l.vsock_socket + " must be directly inside runtime_dir " + spec.runtime_dir);
    }
    check_socket_path(l.vsock_socket);
  }
  validate_devices(spec);
  if (spec.restore.active()) {
    validate_restore(spec);
  } else {
    validate_boot(spec);
  }
}

std::string drive_path(const VmSpec& spec, const DiskSpec& disk) {
  std::string name = disk.path.substr(disk.path.find_last_of('/') + 1);
  bool in_vm_dir = parent_of(disk.path) == trim_slash(spec.vm_dir) && !name.empty() && name != "." && name != "..";
  return in_vm_dir ? name : disk.path;
}

Call logger_call(const Layout& l) {
  return {"PUT", "/logger", json{{"log_path", l.log}, {"level", "Info"}, {"show_level", true}}};
}

Call metrics_call(const Layout& l) { return {"PUT", "/metrics", json{{"metrics_path", l.metrics}}}; }

std::vector<Call> boot_calls(const VmSpec& spec, const Layout& l) {
  std::vector<Call> calls;
  calls.push_back({"PUT", "/machine-config", json{{"vcpu_count", spec.vcpus}, {"mem_size_mib", spec.memory_mib}}});

  json boot{{"kernel_image_path", spec.kernel}};
  if (!spec.cmdline.empty()) boot["boot_args"] = spec.cmdline;
  if (!spec.initrd.empty()) boot["initrd_path"] = spec.initrd;
  calls.push_back({"PUT", "/boot-source", boot});

  for (const auto& d : spec.disks) {
    calls.push_back({"PUT", "/drives/" + d.id,
                     json{{"drive_id", d.id},
                          {"path_on_host", drive_path(spec, d)},
                          {"is_root_device", d.root},
                          {"is_read_only", d.read_only}}});
  }
  for (const auto& n : spec.nics) {
    json nic{{"iface_id", n.id}, {"host_dev_name", n.tap}};
    if (!n.mac.empty()) nic["guest_mac"] = n.mac;
    calls.push_back({"PUT", "/network-interfaces/" + n.id, nic});
  }
  if (!l.vsock_socket.empty()) {
    calls.push_back({"PUT", "/vsock", json{{"guest_cid", spec.agent.cid}, {"uds_path", l.vsock_socket}}});
  }
  return calls;
}

Call instance_start_call() { return {"PUT", "/actions", json{{"action_type", "InstanceStart"}}}; }

Call snapshot_create_call(const std::string& snapshot_path, const std::string& mem_path) {
  require_absolute("snapshot path", snapshot_path);
  require_absolute("memory file path", mem_path);
  return {"PUT", "/snapshot/create",
          json{{"snapshot_type", "Full"}, {"snapshot_path", snapshot_path}, {"mem_file_path", mem_path}}};
}

Call snapshot_load_call(const VmSpec& spec, const Layout& l) {
  json body{{"snapshot_path", spec.restore.state},
            {"mem_backend", {{"backend_type", "File"}, {"backend_path", spec.memory_file}}},
            {"resume_vm", false}};
  if (!spec.nics.empty()) {
    json nets = json::array();
    for (const auto& n : spec.nics) nets.push_back({{"iface_id", n.id}, {"host_dev_name", n.tap}});
    body["network_overrides"] = nets;
  }
  if (!l.vsock_socket.empty()) body["vsock_override"] = {{"uds_path", l.vsock_socket}};
  return {"PUT", "/snapshot/load", body};
}

Call patch_drive_call(const std::string& id, const std::string& path_on_host) {
  return {"PATCH", "/drives/" + id, json{{"drive_id", id}, {"path_on_host", path_on_host}}};
}

std::string resolve_drive_path(const std::string& path_on_host, const std::string& cwd) {
  return is_absolute(path_on_host) ? path_on_host : trim_slash(cwd) + "/" + path_on_host;
}

std::vector<Call> drive_switch_calls(const VmSpec& spec, const json& drives) {
  if (!drives.is_array()) invalid("the loaded VM's configuration has no drive list");
  std::vector<Call> calls;
  std::set<std::string> seen;
  for (const auto& d : drives) {
    std::string id = d.value("drive_id", "");
    std::string recorded = d.contains("path_on_host") && d["path_on_host"].is_string() ? d["path_on_host"].get<std::string>() : "";
    auto disk = std::find_if(spec.disks.begin(), spec.disks.end(), [&](const DiskSpec& x) { return x.id == id; });
    if (disk == spec.disks.end()) {
      invalid("the snapshot has drive '" + id + "' (" + recorded + ") that the restored VM's spec does not give a file for");
    }
    seen.insert(id);
    bool recorded_ro = d.value("is_read_only", false);
    if (recorded_ro != disk->read_only) {
      invalid("drive '" + id + "' is " + (recorded_ro ? "read-only" : "read-write") +
              " in the snapshot; a restore cannot change that");
    }
    if (resolve_drive_path(recorded, spec.vm_dir) != disk->path) calls.push_back(patch_drive_call(id, drive_path(spec, *disk)));
  }
  for (const auto& disk : spec.disks) {
    if (!seen.count(disk.id)) invalid("drive '" + disk.id + "' is not in the snapshot; firecracker cannot add a drive to a restored VM");
  }
  return calls;
}

}  // namespace banger::vmm::firecracker
