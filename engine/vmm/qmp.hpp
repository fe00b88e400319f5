#pragma once
// A QMP client: QEMU's JSON control protocol on a Unix socket. One request
// at a time; asynchronous events are skipped (and kept for inspection).
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::vmm {

class Qmp {
 public:
  // Connects, reads the greeting and negotiates capabilities.
  Qmp(const std::string& socket_path, std::chrono::milliseconds timeout);
  ~Qmp();
  Qmp(const Qmp&) = delete;
  Qmp& operator=(const Qmp&) = delete;

  // Runs a command; returns its "return" value or throws EHYPERVISOR with
  // QEMU's error description. `fds` travel with the command (SCM_RIGHTS):
  // getfd and add-fd take the descriptors that came with them.
  nlohmann::json execute(const std::string& command, const nlohmann::json& args = nullptr,
                         const std::vector<int>& fds = {});
  // How long each answer may take from now on (a migration's can be long).
  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }
  const std::vector<nlohmann::json>& events() const { return events_; }
  const nlohmann::json& greeting() const { return greeting_; }

 private:
  nlohmann::json read_message();
  UniqueFd fd_;
  std::string path_;
  std::string buffer_;
  std::chrono::milliseconds timeout_;
  nlohmann::json greeting_;
  std::vector<nlohmann::json> events_;
};

}  // namespace banger::vmm
