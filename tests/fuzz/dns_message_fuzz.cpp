// libFuzzer target: arbitrary bytes as a DNS query to the vm. zone
// responder. Whatever arrives, respond() must return without crashing,
// and any answer must be a well-formed response to it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/net/dns_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto lookup = [](const std::string& vm) -> std::optional<std::uint32_t> {
    if (vm == "web") return 0x7f000001;
    return std::nullopt;
  };
  std::string reply = banger::dns::respond(packet, lookup);
  if (!reply.empty()) {
    // A reply always has a full header, the query's id, and QR set.
    if (reply.size() < 12 || reply[0] != packet[0] || reply[1] != packet[1] || (reply[2] & 0x80) == 0) std::abort();
  }
  return 0;
}
