#pragma once
// A thin client for Firecracker's API socket. Every failure becomes a
// banger::Error whose message names the request, e.g.
//   firecracker: PUT /drives/rootfs: <fault_message>
// (code EHYPERVISOR for answers the hypervisor refused, the transport's
// code from http_unix otherwise).
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

namespace banger::vmm::firecracker {

class Api {
 public:
  explicit Api(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : socket_(std::move(socket_path)), timeout_(timeout) {}

  const std::string& socket() const { return socket_; }
  void put(const std::string& path, const nlohmann::json& body) const;
  void patch(const std::string& path, const nlohmann::json& body) const;
  nlohmann::json get(const std::string& path) const;
  // GET / "state": "Not started", "Running" or "Paused".
  std::string state() const;

 private:
  nlohmann::json call(const std::string& method, const std::string& path, const std::string& body) const;
  std::string socket_;
  std::chrono::milliseconds timeout_;
};

}  // namespace banger::vmm::firecracker
