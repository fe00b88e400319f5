// PUT /snapshot/create and /snapshot/load. The fake's snapshot file is JSON
// (its configuration), the memory file a sparse file of the guest's size;
// neither is Firecracker's format.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "schema.hpp"
#include "vmm.hpp"

namespace fakefc {
namespace {

constexpr int kMagic = 1;

std::string write_file(const std::string& path, const std::string& content, off_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return os_error(errno);
  bool good = (content.empty() || ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size())) &&
              (size < 0 || ::ftruncate(fd, size) == 0);
  int err = errno;
  ::close(fd);
  return good ? std::string() : os_error(err);
}

}  // namespace

json Vmm::state_json() const {
  return {{"fake_firecracker_snapshot", kMagic},
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
  if (state_ != State::paused) {
    return fault("Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running");
  }
  // Open host connections do not survive a snapshot.
  vsock_host_.reset_connections();
  if (std::string err = write_file(c["snapshot_path"], state_json().dump() + "\n", -1); !err.empty()) {
    return fault("Create snapshot error: Cannot perform open on the snapshot backing file: " + err);
  }
  off_t mem = static_cast<off_t>(machine_["mem_size_mib"].get<unsigned long long>()) << 20;
  if (std::string err = write_file(c["mem_file_path"], {}, mem); !err.empty()) {
    return fault("Create snapshot error: Cannot perform open on the memory backing file: " + err);
  }
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
    why = std::string("the snapshot file is corrupt: ") + ex.what();
  }
  if (!why.empty()) {
    // Firecracker ends a process whose restore failed: it may be half-built.
    schedule_exit(1, std::chrono::milliseconds(0));
    return fault("Load snapshot error: Failed to restore from snapshot: " + why);
  }
  return ok();
}

std::string Vmm::restore(const json& req) {
  std::string mem_path = req.contains("mem_backend") && req["mem_backend"].is_object()
                             ? req["mem_backend"]["backend_path"].get<std::string>()
                             : req["mem_file_path"].get<std::string>();
  if (req.contains("mem_backend") && req["mem_backend"].is_object() && req["mem_backend"]["backend_type"] == "Uffd") {
    return "fake-firecracker supports only the File memory backend";
  }
  std::ifstream f(req["snapshot_path"].get<std::string>());
  if (!f) return "Cannot open the snapshot file " + req["snapshot_path"].get<std::string>();
  json s = json::parse(std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()), nullptr, false);
  if (!s.is_object() || s["fake_firecracker_snapshot"] != kMagic) return "the snapshot file is not a fake-firecracker snapshot";

  struct stat st {};
  if (::stat(mem_path.c_str(), &st) != 0) return "Cannot open the memory file: " + os_error(errno);
  off_t want = static_cast<off_t>(s["machine-config"]["mem_size_mib"].get<unsigned long long>()) << 20;
  if (st.st_size != want) return "the memory file size does not match the snapshot";

  for (const auto& d : s["drives"]) {
    int fd = ::open(d["path_on_host"].get<std::string>().c_str(), (d["is_read_only"] == true ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) return "Cannot restore devices: block device " + d["drive_id"].get<std::string>() + ": " + os_error(errno);
    ::close(fd);
  }
  json nics = s["network-interfaces"];
  if (req.contains("network_overrides") && req["network_overrides"].is_array()) {
    for (const auto& o : req["network_overrides"]) {
      bool found = false;
      for (auto& n : nics) {
        if (n["iface_id"] == o["iface_id"]) {
          n["host_dev_name"] = o["host_dev_name"];
          found = true;
        }
      }
      if (!found) return "Invalid network override: no interface " + o["iface_id"].get<std::string>();
    }
  }
  json vsock = s["vsock"];
  if (req.contains("vsock_override") && req["vsock_override"].is_object()) {
    if (vsock.is_null()) return "Invalid vsock override: the snapshot has no vsock device";
    vsock["uds_path"] = req["vsock_override"]["uds_path"];
  }
  if (!vsock.is_null()) {
    std::string err = vsock_host_.bind(vsock["uds_path"]);
    if (!err.empty()) return "Cannot restore devices: vsock: " + err;
  }

  machine_ = s["machine-config"];
  if (req.contains("track_dirty_pages") && req["track_dirty_pages"].is_boolean()) machine_["track_dirty_pages"] = req["track_dirty_pages"];
  drives_ = s["drives"].get<std::vector<json>>();
  nics_ = nics.get<std::vector<json>>();
  if (!vsock.is_null()) vsock_ = vsock;
  // A restored VM has no boot source (GET /vm/config shows it empty).
  boot_source_.reset();
  state_ = req.contains("resume_vm") && req["resume_vm"] == true ? State::running : State::paused;
  log("Loaded snapshot " + req["snapshot_path"].get<std::string>());
  return {};
}

}  // namespace fakefc
