// Pre-boot configuration endpoints. Order of checks as in Firecracker:
// path id, body deserialization, id consistency (API thread), then the
// pre-/post-boot gate and the semantic checks (VMM thread).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "schema.hpp"
#include "vmm.hpp"

namespace fakefc {
namespace {

std::string resource_id_error(const std::vector<std::string>& t) {
  if (t.size() < 2 || t[1].empty()) return "The ID cannot be empty.";
  bool ok = std::all_of(t[1].begin(), t[1].end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
  return ok ? std::string() : "API Resource IDs can only contain alphanumeric characters and underscores.";
}

// 0 or errno of opening `path` the way Firecracker would (it opens disks,
// kernels and log targets when they are configured, not at boot).
int try_open(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

bool valid_mac(const std::string& mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    bool ok = (i % 3 == 2) ? mac[i] == ':' : std::isxdigit(static_cast<unsigned char>(mac[i])) != 0;
    if (!ok) return false;
  }
  return true;
}

json or_null(const json& j, const char* key) { return j.contains(key) ? j[key] : json(nullptr); }

}  // namespace

Reply Vmm::put_boot_source(const std::string& body) {
  json b;
  std::string e = check_body(body,
                             {{"kernel_image_path", Type::string, true},
                              {"initrd_path", Type::string},
                              {"boot_args", Type::string}},
                             true, b);
  if (!e.empty()) return fault(e);
  if (state_ != State::not_started) return fault(kPostBoot);
  boot_path_ = true;
  std::string kernel = b["kernel_image_path"];
  if (int err = try_open(kernel, O_RDONLY)) return fault("Boot source error: The kernel file cannot be opened: " + os_error(err));
  if (b.contains("initrd_path") && b["initrd_path"].is_string()) {
    if (int err = try_open(b["initrd_path"], O_RDONLY)) {
      return fault("Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. " +
                   os_error(err));
    }
  }
  boot_source_ = json{{"kernel_image_path", kernel}, {"initrd_path", or_null(b, "initrd_path")}, {"boot_args", or_null(b, "boot_args")}};
  return ok();
}

Reply Vmm::put_drive(const Tokens& t, const std::string& body) {
  if (std::string e = resource_id_error(t); !e.empty()) return fault(e);
  json d;
  std::string e = check_body(body,
                             {{"drive_id", Type::string, true},
                              {"partuuid", Type::string},
                              {"is_root_device", Type::boolean, true},
                              {"cache_type", Type::string, false, {"Unsafe", "Writeback"}},
                              {"is_read_only", Type::boolean},
                              {"path_on_host", Type::string},
                              {"rate_limiter", Type::object},
                              {"io_engine", Type::string, false, {"Sync", "Async"}},
                              {"socket", Type::string}},
                             true, d);
  if (!e.empty()) return fault(e);
  if (d["drive_id"] != t[1]) return fault("The id from the path does not match the id from the body!");
  if (state_ != State::not_started) return fault(kPostBoot);
  boot_path_ = true;

  std::string id = d["drive_id"];
  bool root = d["is_root_device"];
  auto same = [&](const json& x) { return x["drive_id"] == id; };
  auto pos = std::find_if(drives_.begin(), drives_.end(), same);
  bool has_root = !drives_.empty() && drives_.front()["is_root_device"] == true;
  if (root && has_root && pos != drives_.begin()) return fault("Drive config error: A root block device already exists!");
  if (d.contains("socket") && d["socket"].is_string()) {
    return fault("Drive config error: fake-firecracker does not implement vhost-user-block drives.");
  }
  if (!d.contains("path_on_host") || !d["path_on_host"].is_string()) {
    return fault("Drive config error: Unable to create the virtio block device: path_on_host is required for a virtio-block drive.");
  }
  bool read_only = d.contains("is_read_only") && d["is_read_only"] == true;
  std::string path = d["path_on_host"];
  if (int err = try_open(path, read_only ? O_RDONLY : O_RDWR)) {
    return fault("Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: " +
                 os_error(err) + " " + path);
  }
  json cfg{{"drive_id", id},
           {"partuuid", or_null(d, "partuuid")},
           {"is_root_device", root},
           {"cache_type", d.value("cache_type", json("Unsafe"))},
           {"is_read_only", read_only},
           {"path_on_host", path},
           {"rate_limiter", or_null(d, "rate_limiter")},
           {"io_engine", d.value("io_engine", json("Sync"))},
           {"socket", nullptr}};
  if (cfg["cache_type"].is_null()) cfg["cache_type"] = "Unsafe";
  if (cfg["io_engine"].is_null()) cfg["io_engine"] = "Sync";
  if (pos != drives_.end()) {
    *pos = cfg;
    if (root && pos != drives_.begin()) std::iter_swap(drives_.begin(), pos);
  } else if (root) {
    drives_.insert(drives_.begin(), cfg);
  } else {
    drives_.push_back(cfg);
  }
  return ok();
}

// PATCH /drives/<id> after start (running or paused): a new backing file
// and/or rate limiter, as RuntimeApiController::update_block_device does it.
Reply Vmm::patch_drive(const Tokens& t, const std::string& body) {
  if (std::string e = resource_id_error(t); !e.empty()) return fault(e);
  json d;
  std::string e = check_body(body, {{"drive_id", Type::string, true}, {"path_on_host", Type::string}, {"rate_limiter", Type::object}},
                             true, d);
  if (!e.empty()) return fault(e);
  if (d["drive_id"] != t[1]) return fault("The id from the path does not match the id from the body!");
  if (state_ == State::not_started) return fault(kPreBoot);
  const std::string prefix = "Drive config error: Unable to patch the block device: ";
  const std::string suffix = " Please verify the request arguments.";
  auto pos = std::find_if(drives_.begin(), drives_.end(), [&](const json& x) { return x["drive_id"] == d["drive_id"]; });
  if (pos == drives_.end()) return fault(prefix + "Failed perform action on device: Device not found" + suffix);
  bool has_path = d.contains("path_on_host") && d["path_on_host"].is_string();
  bool has_limiter = d.contains("rate_limiter") && d["rate_limiter"].is_object();
  if (!has_path && !has_limiter) return fault(prefix + "Block: Running method expected different backend." + suffix);
  if (has_path) {
    std::string path = d["path_on_host"];
    if (int err = try_open(path, (*pos)["is_read_only"] == true ? O_RDONLY : O_RDWR)) {
      return fault(prefix + "Block: Virtio backend error: Error manipulating the backing file: " + os_error(err) + " " + path + suffix);
    }
    (*pos)["path_on_host"] = path;
    log("Drive " + d["drive_id"].get<std::string>() + " now backed by " + path);
  }
  if (has_limiter) return fault("fake-firecracker does not implement rate limiter updates.");
  return ok();
}

Reply Vmm::put_net(const Tokens& t, const std::string& body) {
  if (std::string e = resource_id_error(t); !e.empty()) return fault(e);
  json n;
  std::string e = check_body(body,
                             {{"iface_id", Type::string, true},
                              {"host_dev_name", Type::string, true},
                              {"guest_mac", Type::string},
                              {"mtu", Type::u16},
                              {"rx_rate_limiter", Type::object},
                              {"tx_rate_limiter", Type::object}},
                             true, n);
  if (!e.empty()) return fault(e);
  if (n.contains("guest_mac") && n["guest_mac"].is_string() && !valid_mac(n["guest_mac"])) {
    return fault(std::string(kDeserializePrefix) + "invalid value: string " + n["guest_mac"].dump() + ", expected a MAC address.");
  }
  std::string id = n["iface_id"];
  if (id != t[1]) return fault("The id from the path [" + t[1] + "] does not match the id from the body [" + id + "]!");
  if (state_ != State::not_started) return fault(kPostBoot);
  boot_path_ = true;
  for (const auto& other : nics_) {
    if (other["iface_id"] == id) continue;
    if (other["host_dev_name"] == n["host_dev_name"]) {
      return fault("Network config error: The host device name is already in use: " + n["host_dev_name"].get<std::string>());
    }
    if (n.contains("guest_mac") && !n["guest_mac"].is_null() && other["guest_mac"] == n["guest_mac"]) {
      return fault("Network config error: The MAC address is already in use: " + n["guest_mac"].get<std::string>());
    }
  }
  json cfg{{"iface_id", id},
           {"host_dev_name", n["host_dev_name"]},
           {"guest_mac", or_null(n, "guest_mac")},
           {"mtu", or_null(n, "mtu")},
           {"rx_rate_limiter", or_null(n, "rx_rate_limiter")},
           {"tx_rate_limiter", or_null(n, "tx_rate_limiter")}};
  auto pos = std::find_if(nics_.begin(), nics_.end(), [&](const json& x) { return x["iface_id"] == id; });
  if (pos != nics_.end()) {
    *pos = cfg;
  } else {
    nics_.push_back(cfg);
  }
  return ok();
}

Reply Vmm::put_vsock(const std::string& body) {
  json v;
  std::string e = check_body(body, {{"vsock_id", Type::string}, {"guest_cid", Type::u32, true}, {"uds_path", Type::string, true}},
                             true, v);
  if (!e.empty()) return fault(e);
  if (state_ != State::not_started) return fault(kPostBoot);
  boot_path_ = true;
  if (v["guest_cid"].get<unsigned long long>() < 3) {
    return fault("Vsock config error: guest_cid must be >= 3 (CIDs 0-2 are reserved; fake-firecracker enforces the API's minimum).");
  }
  // Firecracker binds uds_path when the device is configured.
  std::string err = vsock_host_.bind(v["uds_path"]);
  if (!err.empty()) {
    return fault("Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: " + err);
  }
  vsock_ = json{{"guest_cid", v["guest_cid"]}, {"uds_path", v["uds_path"]}};
  return ok();
}

Reply Vmm::put_logger(const std::string& body) {
  json l;
  std::string e = check_body(body,
                             {{"log_path", Type::string},
                              {"level", Type::string, false, {"Error", "Warning", "Info", "Debug", "Trace", "Off"}, true},
                              {"show_level", Type::boolean},
                              {"show_log_origin", Type::boolean},
                              {"module", Type::string}},
                             true, l);
  if (!e.empty()) return fault(e);
  if (state_ != State::not_started) return fault(kPostBoot);
  if (logger_set_) return fault("Logger error: fake-firecracker: the logger can be configured only once.");
  if (l.contains("log_path") && l["log_path"].is_string()) {
    // Stricter than Firecracker 1.16 (which creates the file): the target must exist.
    int fd = ::open(l["log_path"].get<std::string>().c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fault("Logger error: Failed to open target file: " + os_error(errno));
    log_fd_ = fd;
  }
  logger_set_ = true;
  log("Running Firecracker v" + std::string(kVersion) + " (fake)");
  return ok();
}

Reply Vmm::put_metrics(const std::string& body) {
  json m;
  // MetricsConfig has no deny_unknown_fields in Firecracker either.
  std::string e = check_body(body, {{"metrics_path", Type::string, true}}, false, m);
  if (!e.empty()) return fault(e);
  if (state_ != State::not_started) return fault(kPostBoot);
  const std::string prefix = "Metrics error: Cannot initialize the metrics system due to bad user input: ";
  if (metrics_set_) return fault(prefix + "Reinitialization of metrics not allowed.");
  std::string path = m["metrics_path"];
  if (int err = try_open(path, O_WRONLY | O_NONBLOCK)) return fault(prefix + os_error(err));
  metrics_path_ = path;
  metrics_set_ = true;
  return ok();
}

Reply Vmm::put_machine_config(const std::string& body) {
  json m;
  std::string e = check_body(body,
                             {{"vcpu_count", Type::u8, true},
                              {"mem_size_mib", Type::u64, true},
                              {"smt", Type::boolean},
                              {"cpu_template", Type::string, false, {"C3", "T2", "T2S", "T2CL", "T2A", "V1N1", "None"}},
                              {"track_dirty_pages", Type::boolean},
                              {"huge_pages", Type::string, false, {"None", "Transparent", "2M"}}},
                             true, m);
  if (!e.empty()) return fault(e);
  if (state_ != State::not_started) return fault(kPostBoot);
  boot_path_ = true;
  unsigned vcpus = m["vcpu_count"];
  bool smt = m.value("smt", json(false)).is_boolean() && m.value("smt", false);
  if (vcpus == 0 || vcpus > 32 || (smt && vcpus > 1 && vcpus % 2 == 1)) {
    return fault("Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled.");
  }
  unsigned long long mem = m["mem_size_mib"];
  std::string huge = m.contains("huge_pages") && m["huge_pages"].is_string() ? m["huge_pages"].get<std::string>() : "None";
  if (mem == 0 || (huge == "2M" && mem % 2 != 0)) {
    return fault("Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.");
  }
  bool dirty = m.contains("track_dirty_pages") && m["track_dirty_pages"] == true;
  machine_ = {{"vcpu_count", vcpus}, {"mem_size_mib", mem}, {"smt", smt}, {"track_dirty_pages", dirty}, {"huge_pages", huge}};
  return ok();
}

}  // namespace fakefc
