// The egress allow-list operations (engine/net/egress.hpp). Both act on a
// tap, and only on one of the caller's: a tap banger made is owned by the
// uid that asked for it (create_tap), so one user cannot install rules
// for, or open addresses to, another user's VM.
#include <fstream>
#include <string>

#include "engine/core/error.hpp"
#include "engine/net/egress.hpp"
#include "engine/net/netlink.hpp"
#include "engine/priv/ops.hpp"
#include "engine/priv/validate.hpp"

namespace banger::priv {

using nlohmann::json;

namespace {

constexpr std::size_t kMaxAddresses = 64;
constexpr long kMaxTtl = 86400;

// The tap exists, is a tun/tap device, and its owner is the caller.
net::LinkInfo callers_tap(const std::string& tap, const Caller& caller) {
  validate::tap_name(tap);
  auto info = net::link_info(tap);
  if (!info) throw Error("ENOENT", "no tap named " + tap);
  if (info->kind != "tun") throw Error("EPERM", tap + " is not a tun/tap device");
  std::ifstream f("/sys/class/net/" + tap + "/owner");
  long owner = -2;
  if (!(f >> owner) || owner != static_cast<long>(caller.uid)) {
    throw Error("EPERM", "tap " + tap + " is not owned by uid " + std::to_string(caller.uid));
  }
  return *info;
}

}  // namespace

Result ensure_egress(const json& p, const Caller& caller, Fds&) {
  expect_fields(p, {"tap", "guest_ip", "bridge", "resolver_port"});
  net::EgressSpec s;
  s.tap = str(p, "tap");
  s.guest_ip = str(p, "guest_ip");
  s.bridge = str(p, "bridge");
  long port = integer(p, "resolver_port");
  validate::tap_name(s.tap);
  validate::bridge_name(s.bridge);
  std::uint32_t guest = validate::unicast_ipv4(s.guest_ip);
  if (port < 1024 || port > 65535) throw Error("EINVAL", "invalid resolver_port " + std::to_string(port) + ": must be 1024..65535");
  s.resolver_port = static_cast<std::uint16_t>(port);
  auto tap = callers_tap(s.tap, caller);
  if (tap.master != s.bridge) throw Error("EPERM", "tap " + s.tap + " is not a port of " + s.bridge);
  auto bridge = net::link_info(s.bridge);
  if (!bridge || bridge->kind != "bridge" || bridge->ipv4.empty()) {
    throw Error("ENOENT", s.bridge + " is not a bridge with an IPv4 address");
  }
  // The bridge's own address and network: the guest must be a host of it.
  const std::string& cidr = bridge->ipv4.front();
  auto slash = cidr.find('/');
  s.bridge_ip = cidr.substr(0, slash);
  s.prefix = std::stoi(cidr.substr(slash + 1));
  std::uint32_t gw = validate::ipv4(s.bridge_ip);
  std::uint32_t mask = s.prefix == 0 ? 0 : 0xffffffffu << (32 - s.prefix);
  if ((guest & mask) != (gw & mask) || guest == gw || (s.prefix <= 30 && ((guest & ~mask) == 0 || (guest & ~mask) == ~mask))) {
    throw Error("EINVAL", "invalid guest_ip '" + s.guest_ip + "': not a guest address of " + cidr);
  }
  net::ensure_egress(s);
  return Result{};
}

Result egress_allow(const json& p, const Caller& caller, Fds&) {
  expect_fields(p, {"tap", "addresses", "ttl"});
  auto tap = str(p, "tap");
  long ttl = integer(p, "ttl");
  if (ttl < 1 || ttl > kMaxTtl) throw Error("EINVAL", "invalid ttl " + std::to_string(ttl) + ": must be 1.." + std::to_string(kMaxTtl));
  const auto& list = p.at("addresses");
  if (!list.is_array() || list.empty() || list.size() > kMaxAddresses) {
    throw Error("EINVAL", "field 'addresses' must be an array of 1.." + std::to_string(kMaxAddresses) + " IPv4 addresses");
  }
  std::vector<std::string> addresses;
  for (const auto& a : list) {
    if (!a.is_string()) throw Error("EINVAL", "field 'addresses' must hold strings");
    validate::unicast_ipv4(a.get<std::string>());
    addresses.push_back(a.get<std::string>());
  }
  validate::tap_name(tap);
  callers_tap(tap, caller);
  net::egress_allow(tap, addresses, static_cast<std::uint32_t>(ttl));
  return Result{};
}

}  // namespace banger::priv
