// libFuzzer target: arbitrary bytes as an upstream's answer (or a guest's
// query) to the egress resolver. Parsing, capping TTLs and refusing must
// never crash or read past the packet, and capping keeps the length.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/net/dns_egress.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  (void)banger::dns::parse_answer(packet, "a.test");
  if (banger::dns::cap_ttls(packet, 60).size() != packet.size()) std::abort();
  std::string r = banger::dns::refused(packet);
  if (!r.empty() && (r.size() < 12 || r[0] != packet[0] || r[1] != packet[1])) std::abort();
  return 0;
}
