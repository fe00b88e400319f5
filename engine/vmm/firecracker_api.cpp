#include "engine/vmm/firecracker_api.hpp"

#include "engine/core/error.hpp"
#include "engine/vmm/http_unix.hpp"

namespace banger::vmm::firecracker {
namespace {

// Firecracker answers errors as {"fault_message": "..."}; anything else is
// shown as is (trimmed) so an unexpected answer is still visible.
std::string fault_of(const http::Response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("fault_message") && j["fault_message"].is_string()) {
    return j["fault_message"].get<std::string>();
  }
  std::string body = r.body.substr(0, 512);
  return "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": " + body);
}

}  // namespace

nlohmann::json Api::call(const std::string& method, const std::string& path, const std::string& body) const {
  http::Request req{method, path, body, timeout_};
  http::Response r;
  try {
    r = http::request(socket_, req);
  } catch (const Error& e) {
    throw Error(e.code(), "firecracker: " + method + " " + path + ": " + e.what());
  }
  if (r.status < 200 || r.status >= 300) {
    throw Error("EHYPERVISOR", "firecracker: " + method + " " + path + ": " + fault_of(r));
  }
  if (r.body.empty()) return nullptr;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) throw Error("EHYPERVISOR", "firecracker: " + method + " " + path + ": answer is not JSON");
  return j;
}

void Api::put(const std::string& path, const nlohmann::json& body) const { call("PUT", path, body.dump()); }

void Api::patch(const std::string& path, const nlohmann::json& body) const { call("PATCH", path, body.dump()); }

nlohmann::json Api::get(const std::string& path) const { return call("GET", path, {}); }

std::string Api::state() const {
  nlohmann::json info = get("/");
  if (!info.is_object() || !info.contains("state") || !info["state"].is_string()) {
    throw Error("EHYPERVISOR", "firecracker: GET /: no state in the answer");
  }
  return info["state"].get<std::string>();
}

}  // namespace banger::vmm::firecracker
