#include "engine/vmm/firecracker_snapshot.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <vector>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/vmm/disk_clone.hpp"
#include "engine/vmm/firecracker_config.hpp"
#include "engine/vmm/firecracker_process.hpp"

namespace banger::vmm::firecracker {
namespace {

using nlohmann::json;
using clock = std::chrono::steady_clock;

double ms_since(clock::time_point t) { return std::chrono::duration<double, std::milli>(clock::now() - t).count(); }

[[noreturn]] void invalid(const std::string& what) { throw Error("EINVAL", "firecracker: " + what); }

void require_absolute(const std::string& field, const std::string& p) {
  if (p.empty() || p[0] != '/') invalid("snapshot " + field + " must be an absolute path (got '" + p + "')");
}

std::string cwd_of(pid_t pid) {
  std::string link = "/proc/" + std::to_string(pid) + "/cwd";
  char buf[PATH_MAX];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n < 0) throw Error::last("firecracker: working directory of the VM process", link);
  return std::string(buf, static_cast<size_t>(n));
}

json vm_drives(const Api& api) {
  json cfg = api.get("/vm/config");
  if (!cfg.is_object() || !cfg.contains("drives") || !cfg["drives"].is_array()) {
    throw Error("EHYPERVISOR", "firecracker: GET /vm/config: no drive list in the answer");
  }
  return cfg["drives"];
}

std::map<std::string, std::string> files_of(const json& drives, const std::string& cwd) {
  std::map<std::string, std::string> out;
  for (const auto& d : drives) {
    if (d.contains("path_on_host") && d["path_on_host"].is_string()) {
      out[d.value("drive_id", "")] = resolve_drive_path(d["path_on_host"].get<std::string>(), cwd);
    }
  }
  return out;
}

void check_files(const SnapshotFiles& files) {
  require_absolute("state", files.state);
  if (files.ram.empty()) invalid("a snapshot needs a RAM file: Firecracker always writes guest memory to a file of its own");
  require_absolute("ram", files.ram);
  std::set<std::string> ids;
  for (const auto& d : files.disks) {
    if (!ids.insert(d.id).second) invalid("snapshot disk '" + d.id + "' is given twice");
    require_absolute("disk " + d.id + " current", d.current);
    require_absolute("disk " + d.id + " layer", d.layer);
  }
}

// The disks named must be the files the VM really writes, and every drive
// it writes must be named: a restore needs a frozen copy of each.
void check_disks(const SnapshotFiles& files, const json& drives, const std::string& cwd) {
  auto active = files_of(drives, cwd);
  std::set<std::string> named;
  for (const auto& d : files.disks) {
    named.insert(d.id);
    auto it = active.find(d.id);
    if (it == active.end()) invalid("the VM has no drive '" + d.id + "'");
    if (it->second != d.current) invalid("drive '" + d.id + "' uses " + it->second + ", not " + d.current);
  }
  for (const auto& d : drives) {
    std::string id = d.value("drive_id", "");
    if (d.value("is_read_only", false) || named.count(id)) continue;
    invalid("writable drive '" + id + "' (" + active[id] + ") is not among the snapshot's disks: a restore would have "
            "no frozen copy of it");
  }
}

std::string parent_of(const std::string& p) {
  auto slash = p.find_last_of('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

// Firecracker fsyncs the files it writes and clone_disk its copies; their
// names in the directory need a sync of their own.

void stage_of(const StageFn& stage, const std::string& name, const std::string& detail) {
  if (stage) stage(name, detail);
}

}  // namespace

SnapshotStats take_snapshot(const Api& api, pid_t pid, const SnapshotFiles& files) {
  check_files(files);
  Call create = snapshot_create_call(files.state, files.ram);
  check_disks(files, vm_drives(api), cwd_of(pid));

  auto stopped = clock::now();
  std::string state = api.state();
  bool paused_here = false;
  if (state == "Running") {
    stopped = clock::now();
    api.patch("/vm", json{{"state", "Paused"}});
    paused_here = true;
  } else if (state != "Paused") {
    invalid("the VM is not running (state: " + state + "): nothing to snapshot");
  }

  SnapshotStats stats;
  std::vector<std::string> made;
  try {
    auto t = clock::now();
    api.put(create.path, create.body);
    stats.create_ms = ms_since(t);
    // After the create, as Firecracker's docs order it: a request the
    // guest queued before the pause is either in the file or still pending
    // in the saved queue state, replayed by the restored VM.
    t = clock::now();
    for (const auto& d : files.disks) {
      auto one = clock::now();
      CloneResult r = clone_disk(d.current, d.layer);
      made.push_back(d.layer);
      stats.disks.push_back({d.id, d.layer, to_string(r.method), r.bytes_written, ms_since(one)});
    }
    stats.disks_ms = ms_since(t);
    if (files.sync) {
      std::set<std::string> dirs{parent_of(files.state), parent_of(files.ram)};
      for (const auto& d : files.disks) dirs.insert(parent_of(d.layer));
      for (const auto& dir : dirs) fsync_dir(dir);
    }
  } catch (...) {
    for (const auto& p : made) ::unlink(p.c_str());
    if (paused_here) {
      try {
        api.patch("/vm", json{{"state", "Resumed"}});
      } catch (...) {
        // The original error matters more; the caller sees the VM's state.
      }
    }
    throw;
  }
  struct stat st {};
  if (::stat(files.state.c_str(), &st) == 0) stats.state_bytes = static_cast<std::uint64_t>(st.st_size);
  if (::stat(files.ram.c_str(), &st) == 0) stats.ram_bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;
  stats.pause_ms_so_far = ms_since(stopped);
  return stats;
}

Handles restore(const VmSpec& spec, const StageFn& stage, const FirecrackerOptions& opts) {
  validate(spec);
  Layout l = layout_for(spec);
  Call load = snapshot_load_call(spec, l);
  prepare_files(spec, l);
  stage_of(stage, "launch", spec.binary);
  Spawned proc(spec, l, opts);
  // Only the logger and metrics may come before a snapshot load.
  stage_of(stage, "configure", l.api_socket);
  proc.call(logger_call(l));
  proc.call(metrics_call(l));
  stage_of(stage, "restore", spec.restore.state);
  proc.call(load);
  json cfg = proc.call({"GET", "/vm/config", nullptr});
  for (const Call& c : drive_switch_calls(spec, cfg.is_object() ? cfg["drives"] : json())) {
    stage_of(stage, "drive", c.path + " -> " + c.body["path_on_host"].get<std::string>());
    proc.call(c);
  }
  Handles h = proc.handles(spec);
  proc.release();
  return h;
}

std::map<std::string, std::string> drive_files(const Api& api, pid_t pid) { return files_of(vm_drives(api), cwd_of(pid)); }

}  // namespace banger::vmm::firecracker
