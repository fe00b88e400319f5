#pragma once
// Outbound NAT for one guest: a masquerade rule in banger's own nftables
// table (`ip banger`), plus, on hosts whose iptables FORWARD chain drops by
// default (Docker does this), accept rules for the guest's traffic in
// DOCKER-USER or FORWARD. Every rule carries the tap's name as its comment,
// so removing a VM's NAT removes exactly its rules and nothing else.
#include <string>
#include <string_view>
#include <vector>

namespace banger::net {

inline constexpr std::string_view kNatTable = "banger";

// Idempotent: replaces any rules already tagged with `tap`. Turns on IPv4
// forwarding (net.ipv4.ip_forward) for the current network namespace.
void ensure_nat(std::string_view tap, std::string_view guest_ip, std::string_view bridge);

// Removes every rule tagged with `tap` (NAT and egress, engine/net/egress.hpp,
// and its egress set); drops banger's tables once they hold no rule.
// Returns how many rules were removed.
int remove_nat(std::string_view tap);

// Removes banger's tables (ip and bridge) and every iptables rule banger tagged (uninstall).
int remove_all_nat();

// The taps that currently have rules (for status and tests).
std::vector<std::string> nat_taps();

// What banger has in the ruleset, for the host-object census: whether one
// of its tables (ip, bridge) exists, how many rules they hold, and the tap names carried by its
// rules and by the iptables accept rules tagged `banger:<tap>`. Read only.
struct NatInventory {
  bool table = false;
  int table_rules = 0;
  std::vector<std::string> taps;
};
NatInventory nat_inventory();

}  // namespace banger::net
