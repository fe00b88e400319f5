#pragma once
// A UDP listener for the vm. zone: one packet at a time, answered with
// dns::respond. The loop and its policy (when to stop, where names come
// from) belong to the caller: banger's `dns serve` recipe.
#include <chrono>
#include <cstdint>
#include <string>

#include "engine/net/dns_forward.hpp"
#include "engine/net/dns_message.hpp"

namespace banger::dns {

class Server {
 public:
  // Binds address:port (port 0 picks a free one). EADDRINUSE when another
  // responder already listens there.
  Server(const std::string& address, std::uint16_t port) : listener_(address, port) {}
  std::uint16_t port() const { return listener_.port(); }

  // Waits up to `timeout` for a packet and answers it. Returns false on
  // timeout. A lookup that throws is answered SERVFAIL and rethrown.
  bool serve_once(std::chrono::milliseconds timeout, const Lookup& lookup);

 private:
  UdpListener listener_;
};

}  // namespace banger::dns
