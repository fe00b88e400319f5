#pragma once
// The bodies of the requests that make a restored VM a new machine
// (docs/agent-protocol.md, "reidentify" and "mount"): their wire form and
// the validation the agent applies before acting on them.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace banger::guest {

struct NetConfig {
  std::string dev = "eth0";
  std::string mac;      // "02:ab:cd:ef:01:23"
  std::string address;  // IPv4
  int prefix = 24;
  std::string gateway;  // IPv4, or "" for no default route
  bool operator==(const NetConfig&) const = default;
};

struct ReidentifyRequest {
  std::string generation;  // the restore's id; a repeat of the applied one is a no-op
  std::string hostname;
  std::string machine_id;  // 32 lowercase hex digits
  std::int64_t time_ns = 0;  // host CLOCK_REALTIME
  std::string entropy;     // raw bytes (hex on the wire), at least kMinEntropy
  std::optional<NetConfig> net;
  std::optional<std::vector<std::string>> dns;
  bool ssh_host_keys = true;
  bool operator==(const ReidentifyRequest&) const = default;
};

struct MountRequest {
  std::string serial;  // the virtio-blk serial of the disk to mount
  std::string target;  // absolute path in the guest; made when missing
  std::string fstype = "ext4";
  int timeout_ms = 10000;  // how long the hot-plugged disk may take to appear
  bool operator==(const MountRequest&) const = default;
};

inline constexpr size_t kMinEntropy = 32;
inline constexpr size_t kMaxEntropy = 4096;
inline constexpr size_t kMaxSerial = 20;  // VIRTIO_BLK_ID_BYTES
inline constexpr int kMaxMountTimeoutMs = 300000;

nlohmann::json to_json(const ReidentifyRequest& r);
nlohmann::json to_json(const MountRequest& r);
// Parse and validate; a missing or malformed field throws EINVAL naming it.
// The agent is the one that validates: hosts send what they were given.
ReidentifyRequest parse_reidentify(const nlohmann::json& j);
MountRequest parse_mount(const nlohmann::json& j);

}  // namespace banger::guest
