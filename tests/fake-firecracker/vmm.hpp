#pragma once
// The fake's model of a Firecracker process: the pre-boot configuration it
// accumulates, the state machine (Not started -> Running <-> Paused), and
// one handler per API endpoint that validates like the real one and answers
// with the real status codes and fault messages (see docs/firecracker.md for
// where it deliberately differs).
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "vsock.hpp"

namespace fakefc {

using nlohmann::json;

struct Reply {
  int status = 204;
  std::string body;  // JSON text, empty for 204
};

Reply ok();
Reply ok_json(const json& j);
Reply fault(const std::string& message, int status = 400);

inline const char* kVersion = "1.16.1";
inline const char* kPostBoot = "The requested operation is not supported after starting the microVM.";
inline const char* kPreBoot = "The requested operation is not supported before starting the microVM.";

enum class State { not_started, running, paused };

class Vmm {
 public:
  explicit Vmm(std::string id) : id_(std::move(id)) {}
  Reply handle(const std::string& method, const std::string& path, const std::string& body, bool has_body);

  State state() const { return state_; }
  VsockHost& vsock() { return vsock_host_; }
  // Set when the process should end (guest reset, failed snapshot load).
  std::optional<std::chrono::steady_clock::time_point> exit_at() const { return exit_at_; }
  int exit_code() const { return exit_code_; }
  void log(const std::string& line);

 private:
  using Tokens = std::vector<std::string>;
  Reply get(const Tokens& t, bool has_body);
  Reply put(const Tokens& t, const std::string& body);
  Reply patch(const Tokens& t, const std::string& body);
  // config.cpp
  Reply put_boot_source(const std::string& body);
  Reply put_drive(const Tokens& t, const std::string& body);
  Reply patch_drive(const Tokens& t, const std::string& body);
  Reply put_net(const Tokens& t, const std::string& body);
  Reply put_vsock(const std::string& body);
  Reply put_logger(const std::string& body);
  Reply put_metrics(const std::string& body);
  Reply put_machine_config(const std::string& body);
  // lifecycle.cpp
  Reply put_actions(const std::string& body);
  Reply patch_vm(const std::string& body);
  // snapshot.cpp
  Reply put_snapshot(const Tokens& t, const std::string& body);
  Reply snapshot_create(const std::string& body);
  Reply snapshot_load(const std::string& body);
  std::string restore(const json& req);  // "" or why it failed

  json full_config() const;
  json state_json() const;  // what a snapshot carries
  void schedule_exit(int code, std::chrono::milliseconds after);

  std::string id_;
  std::string booted_by_;  // the instance whose InstanceStart booted the guest (carried through snapshots)
  State state_ = State::not_started;
  bool boot_path_ = false;  // boot-specific resources configured: no snapshot load any more
  bool logger_set_ = false;
  bool metrics_set_ = false;
  int log_fd_ = -1;
  std::string metrics_path_;
  json machine_ = {{"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", false},
                   {"track_dirty_pages", false}, {"huge_pages", "None"}};
  std::optional<json> boot_source_;
  std::vector<json> drives_;  // the root device first, like Firecracker's list
  std::vector<json> nics_;
  std::optional<json> vsock_;
  VsockHost vsock_host_;
  bool ctrl_alt_del_pending_ = false;  // arrived while paused
  std::optional<std::chrono::steady_clock::time_point> exit_at_;
  int exit_code_ = 0;
};

// "No such file or directory (os error 2)", Rust's io::Error wording.
std::string os_error(int err);

}  // namespace fakefc
