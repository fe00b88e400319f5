#pragma once
// Re-addresses a guest NIC for a restored VM, over rtnetlink (libnl-route,
// linked statically), so it works whatever tools the image has.
#include "engine/guest/requests.hpp"

namespace banger::agent {

// Link down (the kernel drops the link's neighbour entries and routes), the
// new MAC, every old IPv4 address replaced by the new one, link up, and the
// default route through the gateway. Throws naming the operation that failed.
void readdress(const guest::NetConfig& net);

}  // namespace banger::agent
