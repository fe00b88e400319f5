// libFuzzer target: arbitrary bytes as a /proc/net/{tcp,tcp6,udp,udp6}
// file, as the guest agent parses it for the listeners request. Whatever
// the text, the parser must return, keep within kMaxListeners, give only
// addresses of the file's family, and its answer must fit one frame and
// read back as what was sent.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/guest/listeners.hpp"
#include "engine/guest/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // the first byte picks the file: bit 0 udp, bit 1 IPv6
  const bool udp = data[0] & 1, ipv6 = data[0] & 2;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  banger::guest::ListenersResult r;
  banger::guest::parse_proc_net(text, udp ? "udp" : "tcp", ipv6, r);
  banger::guest::parse_proc_net(text, udp ? "udp" : "tcp", ipv6, r);  // a second file appends
  if (r.listeners.size() > banger::guest::kMaxListeners) std::abort();
  for (const auto& l : r.listeners) {
    unsigned char buf[16];
    if (inet_pton(ipv6 ? AF_INET6 : AF_INET, l.address.c_str(), buf) != 1) std::abort();
    if (l.family != (ipv6 ? "ipv6" : "ipv4") || l.proto != (udp ? "udp" : "tcp")) std::abort();
  }
  std::string wire = banger::guest::to_json(r).dump();
  if (wire.size() > banger::guest::kMaxPayload) std::abort();
  if (!(banger::guest::parse_listeners(nlohmann::json::parse(wire)) == r)) std::abort();
  return 0;
}
