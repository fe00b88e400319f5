#include "engine/vmm/qemu_snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/vmm/qcow2_chain.hpp"
#include "engine/vmm/qemu.hpp"
#include "engine/vmm/qemu_blockdev.hpp"
#include "engine/vmm/qemu_migration.hpp"
#include "engine/vmm/ram_file.hpp"
#include "engine/vmm/qmp.hpp"

namespace banger::vmm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// The RAM file QEMU maps shared, or "" when its RAM is anonymous or private
// (then the stream carries it). QOM says what QEMU has; the handles say
// where the file is as the owner sees it (an isolated QEMU knows it as
// /proc/self/fd/N).
std::string shared_ram_file(Qmp& qmp, const Handles& h) {
  json share;
  try {
    share = qmp.execute("qom-get", {{"path", "/objects/pc.ram"}, {"property", "share"}});
  } catch (const Error&) {
    return "";  // no memory-backend-file: plain -m
  }
  if (!share.is_boolean() || !share.get<bool>()) return "";
  if (!h.memory_file.empty()) return h.memory_file;
  std::string path = qmp.execute("qom-get", {{"path", "/objects/pc.ram"}, {"property", "mem-path"}}).get<std::string>();
  if (path.rfind("/proc/", 0) == 0) throw Error("EINVAL", "snapshot: the handles do not say where the VM's RAM file is");
  return path;
}

UniqueFd create_output(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw Error::last("create", path);
  return fd;
}

void fsync_path(int fd, const std::string& what) {
  if (::fsync(fd) != 0) throw Error::last("fsync", what);
}

void fsync_dir(const std::string& file) {
  std::string dir = std::filesystem::path(file).parent_path().string();
  UniqueFd d(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d) throw Error::last("open", dir);
  fsync_path(d.get(), dir);
}

std::string node_suffix() {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "-s%08x", rd());
  return buf;
}

// What this call made, undone on failure in reverse.
struct Made {
  std::vector<std::string> files;
  ~Made() {
    for (auto it = files.rbegin(); it != files.rend(); ++it) ::unlink(it->c_str());
  }
  void keep() { files.clear(); }
};

struct PreparedDisk {
  const SnapshotDisk* spec;
  std::string active_node;  // the node the device writes now
  std::string node;         // the overlay's node name
  UniqueFd rw, ro;          // `next`, for its fdset
  int set = -1;
};

}  // namespace

SnapshotStats qemu_snapshot(const Handles& h, const SnapshotFiles& files) {
  if (files.state.empty()) throw Error("EINVAL", "snapshot: no state file given");
  Qmp qmp(h.control_socket, 10s);
  SnapshotStats stats;

  // What the VM has: every disk must be in the plan, and only those.
  std::map<std::string, std::string> active;  // disk id -> active node
  for (const json& b : qmp.execute("query-block")) {
    if (!b.contains("inserted")) continue;
    active[block_disk_id(b)] = b["inserted"].value("node-name", "");
  }
  std::set<std::string> planned;
  for (const SnapshotDisk& d : files.disks) {
    if (!active.count(d.id)) throw Error("EINVAL", "snapshot: the VM has no disk '" + d.id + "'");
    if (!planned.insert(d.id).second) throw Error("EINVAL", "snapshot: disk '" + d.id + "' is named twice");
    if (d.current.empty() || d.layer.empty() || d.next.empty()) {
      throw Error("EINVAL", "snapshot: disk '" + d.id + "' needs current, layer and next");
    }
  }
  for (const auto& [id, node] : active) {
    if (!planned.count(id)) {
      throw Error("EINVAL", "snapshot: disk '" + id + "' is not in the plan (hot-plugged? a restore could not recreate it)");
    }
  }
  std::string ram_src = shared_ram_file(qmp, h);
  stats.ram = ram_src.empty() ? "stream" : "file";
  if (!ram_src.empty() && files.ram.empty()) throw Error("EINVAL", "snapshot: the VM's RAM is a shared file: give files.ram");

  // Everything that needs no pause, while the VM still runs.
  set_ignore_shared(qmp, !ram_src.empty());
  qmp.execute("migrate-set-parameters", {{"max-bandwidth", std::int64_t{1} << 40}});  // 7.2 caps at 32 MiB/s
  Made made;
  UniqueFd state = create_output(files.state);
  made.files.push_back(files.state);
  UniqueFd ram_in, ram_out;
  if (!ram_src.empty()) {
    ram_in.reset(::open(ram_src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ram_in) throw Error::last("open", ram_src);
    ram_out = create_output(files.ram);
    made.files.push_back(files.ram);
  }
  std::vector<PreparedDisk> disks;
  const std::string suffix = node_suffix();
  for (const SnapshotDisk& d : files.disks) {
    PreparedDisk p{&d, active[d.id], d.id + suffix, {}, {}, -1};
    std::string format = d.format;
    if (format.empty()) {
      UniqueFd cur(::open(d.current.c_str(), O_RDONLY | O_CLOEXEC));
      if (!cur) throw Error::last("open", d.current);
      format = is_qcow2(cur.get()) ? "qcow2" : "raw";
    }
    // The file the VM writes becomes the layer: same inode, frozen once
    // the VM stops writing to it below.
    if (::link(d.current.c_str(), d.layer.c_str()) != 0) throw Error::last("link", d.current + " -> " + d.layer);
    made.files.push_back(d.layer);
    create_qcow2_overlay(d.layer, d.next, 0, format);
    made.files.push_back(d.next);
    p.rw.reset(::open(d.next.c_str(), O_RDWR | O_CLOEXEC));
    if (!p.rw) throw Error::last("open", d.next);
    p.ro = reopen_read_only(p.rw.get(), d.next);
    disks.push_back(std::move(p));
  }

  // The pause.
  const auto t_stop = Clock::now();
  std::string status = qmp.execute("query-status").value("status", "");
  if (status == "running") qmp.execute("stop");  // QEMU drains and flushes the disks

  auto t = Clock::now();
  std::vector<std::string> added;
  try {
    json actions = json::array();
    for (PreparedDisk& p : disks) {
      p.set = add_fdset(qmp, {p.rw.get(), p.ro.get()}, file_opaque(p.rw.get(), p.spec->next));
      qmp.execute("blockdev-add", fdset_node(p.node, "qcow2", p.set, false, nullptr));
      added.push_back(p.node);
      actions.push_back({{"type", "blockdev-snapshot"}, {"data", {{"node", p.active_node}, {"overlay", p.node}}}});
    }
    // One transaction: every disk switches, or none does.
    if (!actions.empty()) qmp.execute("transaction", {{"actions", actions}});
  } catch (...) {
    for (const auto& node : added) {
      try {
        qmp.execute("blockdev-del", {{"node-name", node}});
      } catch (const Error&) {
      }
    }
    for (const PreparedDisk& p : disks) {
      if (p.set >= 0) remove_fdset(qmp, p.set);
    }
    throw;
  }
  stats.disks_ms = ms_since(t);
  for (const PreparedDisk& p : disks) stats.disks.push_back({p.spec->id, p.spec->layer, p.spec->next, p.node});
  // From here the VM's disks are the `next` overlays, above the layers:
  // those stay whatever happens (the caller decides).
  std::vector<std::string> keep;
  for (const PreparedDisk& p : disks) keep.insert(keep.end(), {p.spec->layer, p.spec->next});
  std::erase_if(made.files, [&](const std::string& f) { return std::find(keep.begin(), keep.end(), f) != keep.end(); });

  try {
    t = Clock::now();
    qmp.set_timeout(120s);
    qmp.execute("getfd", {{"fdname", "banger-snapshot"}}, {state.get()});
    qmp.execute("migrate", {{"uri", "fd:banger-snapshot"}});
    wait_for_migration(qmp, 300s, "saving the device state to " + files.state);
    stats.migrate_ms = ms_since(t);
    struct stat st {};
    if (::fstat(state.get(), &st) != 0) throw Error::last("fstat", files.state);
    stats.state_bytes = static_cast<std::uint64_t>(st.st_size);

    if (ram_in) {
      t = Clock::now();
      stats.ram_bytes = copy_data_extents(ram_in.get(), ram_out.get(), ram_src + " -> " + files.ram);
      stats.ram_copy_ms = ms_since(t);
    }
    if (files.sync) {
      t = Clock::now();
      fsync_path(state.get(), files.state);
      if (ram_out) fsync_path(ram_out.get(), files.ram);
      fsync_dir(files.state);
      if (ram_out && std::filesystem::path(files.ram).parent_path() != std::filesystem::path(files.state).parent_path()) {
        fsync_dir(files.ram);
      }
      stats.sync_ms = ms_since(t);
    }
  } catch (const Error& e) {
    std::string what = e.what();
    throw Error(e.code(), what + " (the VM's disks were already switched to their next overlays)");
  }
  stats.pause_ms_so_far = ms_since(t_stop);
  made.keep();
  return stats;
}

std::map<std::string, std::string> qemu_block_files(const Handles& h) {
  Qmp qmp(h.control_socket, 10s);
  std::map<int, std::string> opaque;  // fdset id -> the path it was added with
  for (const json& set : qmp.execute("query-fdsets")) {
    for (const json& fd : set.value("fds", json::array())) {
      if (fd.contains("opaque")) {
        opaque.emplace(set.value("fdset-id", -1), fd["opaque"].get<std::string>());
        break;
      }
    }
  }
  std::map<std::string, std::string> files;
  for (const json& b : qmp.execute("query-block")) {
    if (!b.contains("inserted")) continue;
    std::string file = b["inserted"].value("file", "");
    // A node given options rather than a plain file name (an explicit
    // backing node, an fdset) reports them as json:{...}.
    if (file.rfind("json:", 0) == 0) {
      json j = json::parse(file.substr(5), nullptr, false);
      if (j.is_object() && j.contains("file") && j["file"].is_object()) file = j["file"].value("filename", file);
    }
    const std::string fdset = "/dev/fdset/";
    if (file.rfind(fdset, 0) == 0) {
      try {
        if (auto it = opaque.find(std::stoi(file.substr(fdset.size()))); it != opaque.end()) {
          file = current_name(it->second);
        }
      } catch (const std::exception&) {
      }
    }
    files[block_disk_id(b)] = file;
  }
  return files;
}

}  // namespace banger::vmm
