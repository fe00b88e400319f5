// PUT /snapshot/create and /snapshot/load, in the order and with the errors
// of Firecracker 1.16's create_snapshot / restore_from_snapshot
// (src/vmm/src/persist.rs). The files are the fake's own: the state file is
// JSON (the configuration the snapshot carries), the memory file is the
// guest's size, sparse, with a header page saying who booted the guest and
// who saved it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "schema.hpp"
#include "vmm.hpp"

namespace fakefc {
namespace {

constexpr int kMagic = 1;
const std::string kMemoryMagic = "FAKE-FIRECRACKER-MEMORY\n";
const std::string kLoadError = "Load snapshot error: Failed to restore from snapshot: ";
const std::string kStateFileError = "Failed to get snapshot state from file: ";
const std::string kMemoryError = "Failed to load guest memory: Error creating guest memory from file: ";
const std::string kDeviceError = "Failed to build microVM from snapshot: Failed to restore devices: Error restoring MMIO devices: ";

// The state file: created or truncated, like Firecracker's OpenOptions
// create+write+truncate.
std::string write_state(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return "Cannot perform open on the snapshot backing file: " + os_error(errno);
  bool good = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  int err = errno;
  good = good && ::fsync(fd) == 0;
  if (good) err = 0;
  ::close(fd);
  return good ? std::string() : "Cannot perform sync_all on the snapshot backing file: " + os_error(err ? err : errno);
}

// The memory file as snapshot_memory_to_file treats it: opened without
// truncation (it may be the very file this VM was loaded from), emptied
// only when its size is wrong, then set to the guest's size and written.
std::string write_memory(const std::string& path, off_t size, const std::string& header) {
  struct stat st {};
  bool existed = ::stat(path.c_str(), &st) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return "Cannot perform open on the memory backing file: " + os_error(errno);
  std::string err;
  if (existed && st.st_size != size && ::ftruncate(fd, 0) != 0) err = "Cannot perform truncate on the memory backing file: " + os_error(errno);
  if (err.empty() && ::ftruncate(fd, size) != 0) err = "Cannot perform set_length on the memory backing file: " + os_error(errno);
  if (err.empty() && ::pwrite(fd, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    err = "Cannot write memory file: " + os_error(errno);
  }
  if (err.empty() && ::fsync(fd) != 0) err = "Cannot perform sync_all on the memory backing file: " + os_error(errno);
  ::close(fd);
  return err;
}

// The fake's memory header: "" when `path` holds one, else why not.
std::string read_memory_header(int fd, json& out) {
  std::string page(4096, '\0');
  ssize_t n = ::pread(fd, page.data(), page.size(), 0);
  page.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (page.rfind(kMemoryMagic, 0) != 0) return "fake-firecracker: the memory file is not one it wrote";
  size_t end = page.find('\n', kMemoryMagic.size());
  out = json::parse(page.substr(kMemoryMagic.size(), end == std::string::npos ? std::string::npos : end - kMemoryMagic.size()),
                    nullptr, false);
  return out.is_object() ? std::string() : "fake-firecracker: the memory file's header is corrupt";
}

}  // namespace

json Vmm::state_json() const {
  return {{"fake_firecracker_snapshot", kMagic},
          {"saved_by", id_},
          {"machine-config", machine_},
          {"boot-source", boot_source_ ? *boot_source_ : json(nullptr)},
          {"drives", drives_},
          {"network-interfaces", nics_},
          {"vsock", vsock_ ? *vsock_ : json(nullptr)}};
}

Reply Vmm::put_snapshot(const Tokens& t, const std::string& body) {
  if (t.size() < 2) return fault("Missing snapshot operation type.");
  if (t[1] == "create") return snapshot_create(body);
  if (t[1] == "load") return snapshot_load(body);
  return fault("Invalid request method and/or path: PUT /snapshot/" + t[1] + ".");
}

Reply Vmm::snapshot_create(const std::string& body) {
  json c;
  std::string e = check_body(body,
                             {{"mem_file_path", Type::string, true},
                              {"snapshot_path", Type::string, true},
                              {"snapshot_type", Type::string, false, {"Full", "Diff"}}},
                             true, c);
  if (!e.empty()) return fault(e);
  if (state_ == State::not_started) return fault(kPreBoot);
  // Open host connections do not survive a snapshot: the device is reset
  // while saving, before the vCPUs are asked for their state.
  vsock_host_.reset_connections();
  if (state_ != State::paused) {
    return fault("Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running");
  }
  if (std::string err = write_state(c["snapshot_path"], state_json().dump() + "\n"); !err.empty()) {
    return fault("Create snapshot error: " + err);
  }
  off_t mem = static_cast<off_t>(machine_["mem_size_mib"].get<unsigned long long>()) << 20;
  json header{{"booted_by", booted_by_}, {"saved_by", id_}, {"mem_size_mib", machine_["mem_size_mib"]}};
  if (std::string err = write_memory(c["mem_file_path"], mem, kMemoryMagic + header.dump() + "\n"); !err.empty()) {
    return fault("Create snapshot error: " + err);
  }
  log("Snapshot created: " + c["snapshot_path"].get<std::string>());
  return ok();
}

Reply Vmm::snapshot_load(const std::string& body) {
  json l;
  std::string e = check_body(body,
                             {{"enable_diff_snapshots", Type::boolean},
                              {"track_dirty_pages", Type::boolean},
                              {"mem_file_path", Type::string},
                              {"mem_backend", Type::object},
                              {"snapshot_path", Type::string, true},
                              {"resume_vm", Type::boolean},
                              {"network_overrides", Type::array},
                              {"vsock_override", Type::object},
                              {"clock_realtime", Type::boolean}},
                             true, l);
  if (e.empty() && l.contains("mem_backend") && l["mem_backend"].is_object()) {
    e = check_object(l["mem_backend"], {{"backend_type", Type::string, true, {"File", "Uffd"}}, {"backend_path", Type::string, true}}, true);
  }
  if (e.empty() && l.contains("network_overrides") && l["network_overrides"].is_array()) {
    for (const auto& o : l["network_overrides"]) {
      e = check_object(o, {{"iface_id", Type::string, true}, {"host_dev_name", Type::string, true}}, true);
      if (!e.empty()) break;
    }
  }
  if (e.empty() && l.contains("vsock_override") && l["vsock_override"].is_object()) {
    e = check_object(l["vsock_override"], {{"uds_path", Type::string, true}}, true);
  }
  if (!e.empty() && e.rfind(kDeserializePrefix, 0) != 0) e = kDeserializePrefix + e + ".";
  if (!e.empty()) return fault(e);
  bool backend = l.contains("mem_backend") && !l["mem_backend"].is_null();
  bool file = l.contains("mem_file_path") && !l["mem_file_path"].is_null();
  if (backend && file) {
    return fault(std::string(kDeserializePrefix) + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.");
  }
  if (!backend && !file) {
    return fault(std::string(kDeserializePrefix) + "missing field: either `mem_backend` or `mem_file_path` is required.");
  }
  if (state_ != State::not_started) return fault(kPostBoot);
  if (boot_path_) return fault("Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.");

  std::string why;
  try {
    why = restore(l);
  } catch (const json::exception& ex) {
    why = kStateFileError + "Failed to load snapshot state from file: fake-firecracker: corrupt snapshot: " + ex.what();
  }
  if (!why.empty()) {
    // Firecracker ends a process whose restore failed: it may be half-built.
    schedule_exit(1, std::chrono::milliseconds(0));
    return fault(kLoadError + why);
  }
  return ok();
}

std::string Vmm::restore(const json& req) {
  auto flag = [&](const char* key) { return req.contains(key) && req[key] == true; };
  // 1. The state file.
  const std::string snapshot_path = req["snapshot_path"];
  int state_fd = ::open(snapshot_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (state_fd < 0) return kStateFileError + "Failed to open snapshot file: " + os_error(errno);
  std::string text;
  char buf[65536];
  for (ssize_t n; (n = ::read(state_fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(state_fd);
  json s = json::parse(text, nullptr, false);
  if (!s.is_object() || s["fake_firecracker_snapshot"] != kMagic) {
    return kStateFileError + "Failed to load snapshot state from file: fake-firecracker: not one of its snapshot files";
  }

  // 2. Overrides, applied to the state before anything is built.
  json nics = s["network-interfaces"];
  if (req.contains("network_overrides") && req["network_overrides"].is_array()) {
    for (const auto& o : req["network_overrides"]) {
      auto n = std::find_if(nics.begin(), nics.end(), [&](const json& x) { return x["iface_id"] == o["iface_id"]; });
      if (n == nics.end()) return kStateFileError + "Unknown Network Device.";
      (*n)["host_dev_name"] = o["host_dev_name"];
    }
  }
  json vsock = s["vsock"];
  if (req.contains("vsock_override") && req["vsock_override"].is_object()) {
    if (vsock.is_null()) return kStateFileError + "Unknown Vsock Device.";
    vsock["uds_path"] = req["vsock_override"]["uds_path"];
  }

  // 3. Guest memory: the file must hold at least the guest's memory.
  const json& backend = req.contains("mem_backend") && req["mem_backend"].is_object() ? req["mem_backend"] : json();
  if (backend.is_object() && backend["backend_type"] == "Uffd") {
    return "Failed to load guest memory: Error creating guest memory from uffd: fake-firecracker supports only the File backend";
  }
  std::string mem_path = backend.is_object() ? backend["backend_path"].get<std::string>() : req["mem_file_path"].get<std::string>();
  int mem_fd = ::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (mem_fd < 0) return kMemoryError + "Failed to load guest memory: " + os_error(errno);
  struct stat st {};
  ::fstat(mem_fd, &st);
  json header;
  std::string header_error = read_memory_header(mem_fd, header);
  ::close(mem_fd);
  off_t want = static_cast<off_t>(s["machine-config"]["mem_size_mib"].get<unsigned long long>()) << 20;
  if (st.st_size < want) {
    return kMemoryError + "Failed to restore guest memory: Total sum of memory regions exceeds largest possible file offset";
  }
  if (!header_error.empty()) return kMemoryError + "Failed to restore guest memory: " + header_error;

  // 4. Devices: drives open where the snapshot recorded them (relative to
  // the working directory), then vsock binds its socket.
  for (const auto& d : s["drives"]) {
    std::string path = d["path_on_host"];
    int fd = ::open(path.c_str(), (d["is_read_only"] == true ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
      return kDeviceError + "Block: Virtio backend error: Error manipulating the backing file: " + os_error(errno) + " " + path;
    }
    ::close(fd);
  }
  if (!vsock.is_null()) {
    std::string err = vsock_host_.bind(vsock["uds_path"]);
    if (!err.empty()) return kDeviceError + "VsockUnixBackend: Error binding to the host-side Unix socket: " + err;
  }

  machine_ = s["machine-config"];
  machine_["track_dirty_pages"] = flag("track_dirty_pages") || flag("enable_diff_snapshots");
  drives_ = s["drives"].get<std::vector<json>>();
  nics_ = nics.get<std::vector<json>>();
  if (!vsock.is_null()) vsock_ = vsock;
  booted_by_ = header.contains("booted_by") && header["booted_by"].is_string() ? header["booted_by"].get<std::string>() : "";
  // A restored VM has no boot source (GET /vm/config shows it empty).
  boot_source_.reset();
  state_ = flag("resume_vm") ? State::running : State::paused;
  log("Loaded snapshot " + snapshot_path + " (guest booted by " + booted_by_ + ")");
  return {};
}

}  // namespace fakefc
