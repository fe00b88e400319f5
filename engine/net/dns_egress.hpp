#pragma once
// The pure parts of the egress resolver (docs/networking.md, Egress
// allow-lists): whether a name is on a VM's allow-list, the REFUSED answer
// for one that is not, and the IPv4 addresses an upstream answer gives for
// the asked name. Functions over bytes, testable without a socket.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::dns {

// Whether `name` (lower-case, no trailing dot) matches one of `patterns`
// (as validate::allow_host returns them): "a.b" matches exactly that name,
// "*.a.b" any name ending in ".a.b" (not "a.b" itself).
bool host_allowed(const std::vector<std::string>& patterns, std::string_view name);

// REFUSED for `packet` with its question echoed (empty when the packet is
// not a query worth answering).
std::string refused(std::string_view packet);

struct ARecord {
  std::uint32_t address = 0;  // host byte order
  std::uint32_t ttl = 0;
};

struct UpstreamAnswer {
  std::uint16_t id = 0;
  std::uint8_t rcode = 0;
  std::string question;  // the question section's bytes, for matching the query
  // The A records of `name` and of the names its CNAME chain (in the
  // answer section, in order) leads to: what the guest will connect to.
  std::vector<ARecord> addresses;
};

// Parses a response to a question about `name`; nullopt when it is not a
// well-formed response.
std::optional<UpstreamAnswer> parse_answer(std::string_view response, std::string_view name);

// `response` with every answer, authority and additional record's TTL
// capped at `max_ttl` (unchanged when it cannot be parsed).
std::string cap_ttls(std::string_view response, std::uint32_t max_ttl);

}  // namespace banger::dns
