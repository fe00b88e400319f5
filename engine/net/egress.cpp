#include "engine/net/egress.hpp"

#include <cstdio>

#include "engine/core/error.hpp"
#include "engine/net/nat.hpp"
#include "engine/net/nftables.hpp"

namespace banger::net {
namespace {

constexpr std::string_view kBridgeFamily = "bridge";

std::string set_name(std::string_view tap) { return std::string(kEgressSetPrefix) + std::string(tap); }

bool egress_chain(const std::string& chain) { return chain.rfind("egress_", 0) == 0; }

std::string network_of(const std::string& ip, int prefix) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (std::sscanf(ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) != 4) throw Error("EINVAL", "invalid IPv4 address '" + ip + "'");
  std::uint32_t v = (a << 24) | (b << 16) | (c << 8) | d;
  std::uint32_t mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  v &= mask;
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." + std::to_string((v >> 8) & 255) + "." +
         std::to_string(v & 255) + "/" + std::to_string(prefix);
}

bool set_exists(Nft& nft, std::string_view tap) {
  return nft.try_run("list set ip " + std::string(kNatTable) + " " + set_name(tap), nullptr, nullptr, true);
}

}  // namespace

int remove_egress_locked(Nft& nft, std::string_view tap) {
  int removed = delete_tagged(nft, "ip", kNatTable, tap, egress_chain, {set_name(tap)});
  return removed + delete_tagged(nft, kBridgeFamily, kNatTable, tap, egress_chain);
}

void ensure_egress(const EgressSpec& s) {
  FileLock lock = nft_lock();
  Nft nft;
  remove_egress_locked(nft, s.tap);
  const std::string ip = "ip " + std::string(kNatTable);
  const std::string br = std::string(kBridgeFamily) + " " + std::string(kNatTable);
  const std::string from = "iifname " + quoted(s.bridge) + " ip saddr " + s.guest_ip + " ";
  const std::string tag = " comment " + quoted(s.tap) + "\n";
  const std::string port = std::to_string(s.resolver_port);
  const std::string set = set_name(s.tap);
  const std::string tap = "iifname " + quoted(s.tap) + " ";
  nft.run(
      "add table " + ip + "\n" +
      "add chain " + ip + " egress_dnat { type nat hook prerouting priority dstnat; policy accept; }\n" +
      "add chain " + ip + " egress_input { type filter hook input priority filter; policy accept; }\n" +
      "add chain " + ip + " egress_forward { type filter hook forward priority filter; policy accept; }\n" +
      "add set " + ip + " " + set + " { type ipv4_addr; flags timeout; }\n" +
      // Every DNS query the guest sends, to whichever server, reaches banger's resolver.
      "add rule " + ip + " egress_dnat " + from + "udp dport 53 dnat to " + s.bridge_ip + ":" + port + tag +
      "add rule " + ip + " egress_input " + from + "ct state established,related accept" + tag +
      "add rule " + ip + " egress_input " + from + "ip daddr " + s.bridge_ip + " udp dport " + port + " accept" + tag +
      "add rule " + ip + " egress_input " + from + "drop" + tag +
      "add rule " + ip + " egress_forward " + from + "ct state established,related accept" + tag +
      "add rule " + ip + " egress_forward " + from + "ip daddr @" + set + " accept" + tag +
      "add rule " + ip + " egress_forward " + from + "drop" + tag +
      "add table " + br + "\n" +
      "add chain " + br + " egress_ports { type filter hook prerouting priority filter; policy accept; }\n" +
      "add rule " + br + " egress_ports " + tap + "ether type != { ip, arp } drop" + tag +
      "add rule " + br + " egress_ports " + tap + "ip saddr != " + s.guest_ip + " drop" + tag +
      "add rule " + br + " egress_ports " + tap + "ip daddr " + network_of(s.bridge_ip, s.prefix) + " ip daddr != " +
          s.bridge_ip + " drop" + tag);
}

void egress_allow(std::string_view tap, const std::vector<std::string>& addresses, std::uint32_t ttl_s) {
  FileLock lock = nft_lock();
  Nft nft;
  if (!set_exists(nft, tap)) throw Error("ENOENT", "tap " + std::string(tap) + " has no egress set");
  if (addresses.empty()) return;
  const std::string target = "element ip " + std::string(kNatTable) + " " + set_name(tap) + " { ";
  std::string timed, bare;
  for (const auto& a : addresses) {
    if (!timed.empty()) {
      timed += ", ";
      bare += ", ";
    }
    timed += a + " timeout " + std::to_string(ttl_s) + "s";
    bare += a;
  }
  // An element that exists keeps its old timeout on "add"; deleting it
  // first (in the same batch, after an add that makes sure it exists)
  // gives it the new one.
  nft.run("add " + target + timed + " }\ndelete " + target + bare + " }\nadd " + target + timed + " }\n");
}

}  // namespace banger::net
