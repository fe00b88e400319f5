#pragma once
// Egress allow-lists for one guest (docs/networking.md, Egress allow-lists),
// in banger's own nftables tables, every rule tagged with the guest's tap:
//   ip banger:     its port-53 traffic redirected to banger's resolver on the
//                  bridge; the host accepts from it only the resolver and
//                  replies (established/related); forwarded traffic only to
//                  the addresses in its set egress_<tap> (elements with
//                  timeouts, added by the resolver); everything else dropped
//   bridge banger: frames from its tap must be IPv4 (or ARP) from its own
//                  address, and not to other guests on the bridge
// so the ip-family rules, which match the guest's address, cannot be
// bypassed by a guest that forges another source address.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace banger::net {

inline constexpr std::string_view kEgressSetPrefix = "egress_";

struct EgressSpec {
  std::string tap, guest_ip, bridge, bridge_ip;
  int prefix = 24;  // the bridge's network
  std::uint16_t resolver_port = 0;
};

// Idempotent: replaces the tap's egress rules and set (an existing set's
// elements are dropped with it). Leaves its NAT rules alone.
void ensure_egress(const EgressSpec& spec);

// Adds (or refreshes) `addresses` in the tap's set with a timeout of
// `ttl_s` seconds. ENOENT when the tap has no set.
void egress_allow(std::string_view tap, const std::vector<std::string>& addresses, std::uint32_t ttl_s);

// Removes the tap's egress rules and set (not its NAT); call under
// nft_lock(). Returns how many rules were removed.
class Nft;
int remove_egress_locked(Nft& nft, std::string_view tap);

}  // namespace banger::net
