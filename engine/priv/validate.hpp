#pragma once
// Validation gates shared by config loading, the CLI and the root helper.
// One implementation, so what the config accepts is exactly what the helper
// will later agree to do. Each throws banger::Error("EINVAL", ...) naming
// the rejected value and the rule.
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/core/unique_fd.hpp"

namespace banger::validate {

inline constexpr std::string_view kBridgeName = "br-fc";
inline constexpr std::string_view kTapPrefix = "bgtap";

// A Linux interface name: 1..15 bytes, no '/', ':', whitespace or NUL.
void iface_name(std::string_view name);
// "br-fc" or "br-fc-<suffix>": banger never touches any other bridge.
void bridge_name(std::string_view name);
// A tap banger created: kTapPrefix followed by [0-9a-z], at most 15 bytes.
void tap_name(std::string_view name);
// The mark a tap carries of the banger home that made it (its ifalias is
// kHomeMarkPrefix + this): 16 lowercase hex digits.
inline constexpr std::string_view kHomeMarkPrefix = "banger:";
void home_tag(std::string_view tag);
// Dotted-quad IPv4; returns the address in host byte order.
std::uint32_t ipv4(std::string_view addr);
// A CIDR prefix length banger accepts for its bridge: 8..32.
int cidr_prefix(long prefix);
// An IPv4 address a host interface can have: not 0.0.0.0/8, loopback,
// multicast, reserved (240/4) or the limited broadcast. Host byte order.
std::uint32_t unicast_ipv4(std::string_view addr);
// The bridge's address in its guest network addr/prefix: unicast, not the
// network's own or broadcast address, and leaving room for a guest.
std::uint32_t bridge_address(std::string_view addr, long prefix);
// A VM name: a DNS label (it becomes <name>.vm): [a-z0-9-], 1..63 bytes,
// starting with a letter, not ending with '-'.
void vm_name(std::string_view name);
// An egress allow-list entry (`--allow-host`, network.allow): a DNS name
// ("example.com") or "*." and one ("*.example.com": its subdomains, not
// itself). Labels of [a-z0-9-_] (upper case folded), 1..63 bytes, not
// starting or ending with '-'; at most 253 bytes; a trailing dot is
// dropped; a bare "*" or a '*' anywhere else is refused. Returns the
// lower-case form.
std::string allow_host(std::string_view pattern);

// A binary root may run on banger's behalf (the helper in a systemd unit, a
// hypervisor): a regular file owned by root, writable by nobody else, not a
// symlink. Checked through an O_PATH|O_NOFOLLOW descriptor, so what was
// checked is the file itself, not whatever a path resolves to later.
// Throws EPERM naming the rule it breaks.
void root_executable(const std::string& path);
// The same check, keeping the O_PATH descriptor it was made through: exec
// that (execveat with AT_EMPTY_PATH) and what runs is what was checked.
UniqueFd open_root_executable(const std::string& path);

}  // namespace banger::validate
