#pragma once
// The guest's listening sockets (docs/agent-protocol.md, "listeners"): the
// parser of /proc/net/{tcp,tcp6,udp,udp6} the agent runs, and the wire form
// both sides share. Parsing is pure (text in, records out) so it is tested on
// fixture text; reading /proc and finding each socket's process is the
// agent's (cli/banger-agent/listeners.cpp).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::guest {

struct Listener {
  std::string proto;    // "tcp" | "udp"
  std::string family;   // "ipv4" | "ipv6"
  std::string address;  // inet_ntop's text: "0.0.0.0", "::", "::ffff:127.0.0.1"
  std::uint16_t port = 0;
  std::uint64_t inode = 0;
  std::optional<int> pid;  // the lowest pid holding the socket, when visible
  std::string comm;        // that process's /proc/<pid>/comm ("" when unknown)
  bool operator==(const Listener&) const = default;
};

struct ListenersResult {
  std::vector<Listener> listeners;
  bool truncated = false;  // a limit below cut the list short
  bool operator==(const ListenersResult&) const = default;
};

// Bounds that keep a guest with huge socket tables from making the agent
// allocate without limit, and the answer within one frame (kMaxPayload):
// 4096 listeners of at most ~170 bytes of JSON each.
inline constexpr size_t kMaxListeners = 4096;
inline constexpr size_t kMaxProcNetBytes = 4 << 20;  // read of each /proc/net file (~27000 sockets)
inline constexpr size_t kMaxFdsScanned = 1 << 18;    // /proc/*/fd entries looked at to find owners

// Appends to `out` the listeners in one /proc/net file's text: TCP sockets
// in LISTEN, UDP sockets that are bound to a port and not connected. `proto`
// is "tcp" or "udp"; `ipv6` says which file (addresses of 32 hex digits).
// The header, malformed lines and other states are skipped; past
// kMaxListeners entries in `out` it stops and sets out.truncated.
// Returns the number of malformed lines.
size_t parse_proc_net(std::string_view text, std::string_view proto, bool ipv6, ListenersResult& out);

// /proc/net's hex address ("0100007F", or 32 digits for IPv6: four 32-bit
// words each printed in the kernel's byte order) as text; nullopt when malformed.
std::optional<std::string> decode_proc_net_address(std::string_view hex);

nlohmann::json to_json(const ListenersResult& r);
// Throws EPROTO naming the field when the agent's answer is malformed.
ListenersResult parse_listeners(const nlohmann::json& j);

}  // namespace banger::guest
