#include "vmm.hpp"

#include <unistd.h>

#include <cstring>
#include <ctime>

namespace fakefc {

Reply ok() { return {204, {}}; }
Reply ok_json(const json& j) { return {200, j.dump()}; }
Reply fault(const std::string& message, int status) { return {status, json{{"fault_message", message}}.dump()}; }

std::string os_error(int err) { return std::string(std::strerror(err)) + " (os error " + std::to_string(err) + ")"; }

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  size_t pos = path.find_first_not_of('/');
  while (pos != std::string::npos && pos < path.size()) {
    size_t slash = path.find('/', pos);
    out.push_back(path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
    pos = slash == std::string::npos ? slash : slash + 1;
  }
  return out;
}

Reply invalid_path(const std::string& method, const std::string& first) {
  return fault("Invalid request method and/or path: " + method + " " + first + ".");
}

const char* state_name(State s) {
  switch (s) {
    case State::not_started: return "Not started";
    case State::running: return "Running";
    case State::paused: return "Paused";
  }
  return "Not started";
}

}  // namespace

void Vmm::log(const std::string& line) {
  if (log_fd_ < 0) return;
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", std::gmtime(&now));
  std::string out = std::string(stamp) + " [" + id_ + ":fc_api] " + line + "\n";
  if (::write(log_fd_, out.data(), out.size()) < 0) {
    // A full disk must not take the API down.
  }
}

void Vmm::schedule_exit(int code, std::chrono::milliseconds after) {
  exit_code_ = code;
  exit_at_ = std::chrono::steady_clock::now() + after;
}

Reply Vmm::handle(const std::string& method, const std::string& path, const std::string& body, bool has_body) {
  log("The API server received a " + method + " request on \"" + path + "\".");
  Tokens t = split_path(path);
  Reply r;
  if (method == "GET") {
    r = get(t, has_body);
  } else if (method == "PUT") {
    r = has_body ? put(t, body) : fault("Empty PUT request.");
  } else if (method == "PATCH") {
    r = has_body ? patch(t, body) : fault("Empty PATCH request.");
  } else {
    r = invalid_path(method, t.empty() ? "" : t[0]);
  }
  if (r.status >= 400) log("Received Error. Status code: " + std::to_string(r.status) + ". Message: " + r.body);
  return r;
}

Reply Vmm::get(const Tokens& t, bool has_body) {
  if (has_body) return fault("GET request cannot have a body.");
  std::string first = t.empty() ? "" : t[0];
  if (first.empty()) {
    return ok_json({{"id", id_}, {"state", state_name(state_)}, {"vmm_version", kVersion}, {"app_name", "Firecracker"}});
  }
  if (first == "version") return ok_json({{"firecracker_version", kVersion}});
  if (first == "machine-config") return ok_json(machine_);
  if (first == "vm" && t.size() > 1 && t[1] == "config") return ok_json(full_config());
  return invalid_path("GET", first);
}

Reply Vmm::put(const Tokens& t, const std::string& body) {
  std::string first = t.empty() ? "" : t[0];
  if (first == "actions") return put_actions(body);
  if (first == "boot-source") return put_boot_source(body);
  if (first == "drives") return put_drive(t, body);
  if (first == "logger") return put_logger(body);
  if (first == "machine-config") return put_machine_config(body);
  if (first == "metrics") return put_metrics(body);
  if (first == "network-interfaces") return put_net(t, body);
  if (first == "snapshot") return put_snapshot(t, body);
  if (first == "vsock") return put_vsock(body);
  for (const char* known : {"balloon", "cpu-config", "mmds", "entropy", "serial", "pmem", "hotplug"}) {
    if (first == known) return fault("fake-firecracker does not implement PUT /" + first + ".");
  }
  return invalid_path("PUT", first);
}

Reply Vmm::patch(const Tokens& t, const std::string& body) {
  std::string first = t.empty() ? "" : t[0];
  if (first == "vm") return patch_vm(body);
  if (first == "drives") return patch_drive(t, body);
  for (const char* known : {"balloon", "machine-config", "mmds", "network-interfaces", "pmem", "hotplug"}) {
    if (first == known) return fault("fake-firecracker does not implement PATCH /" + first + ".");
  }
  return invalid_path("PATCH", first);
}

json Vmm::full_config() const {
  json boot = boot_source_ ? *boot_source_ : json{{"kernel_image_path", ""}, {"initrd_path", nullptr}, {"boot_args", nullptr}};
  return {{"balloon", nullptr},
          {"drives", drives_},
          {"boot-source", boot},
          {"cpu-config", nullptr},
          {"logger", nullptr},
          {"machine-config", machine_},
          {"metrics", nullptr},
          {"mmds-config", nullptr},
          {"network-interfaces", nics_},
          {"vsock", vsock_ ? *vsock_ : json(nullptr)},
          {"entropy", nullptr},
          {"pmem", json::array()},
          {"memory-hotplug", nullptr}};
}

}  // namespace fakefc
