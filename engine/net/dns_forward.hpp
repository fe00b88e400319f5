#pragma once
// banger's DNS sockets: a UDP listener that reports who asked (the <vm>.vm
// responder answers through it; for the egress resolver the guest's address
// decides which VM's allow-list applies), and the forwarding of an allowed
// query to the upstream servers.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::dns {

struct Datagram {
  std::string data;
  std::string peer_ip;  // dotted quad
  std::uint16_t peer_port = 0;
};

class UdpListener {
 public:
  // Binds address:port (IPv4; port 0 picks one). EADDRINUSE when taken.
  UdpListener(const std::string& address, std::uint16_t port);
  std::uint16_t port() const { return port_; }
  // Waits up to `timeout` for a datagram (a signal wakes it: ECANCELED).
  std::optional<Datagram> receive(std::chrono::milliseconds timeout);
  void send(std::string_view data, const std::string& ip, std::uint16_t port);

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

// Sends `query` to each server in turn ("a.b.c.d" for port 53, or
// "a.b.c.d:port") and returns the first reply that carries the query's id
// and question, waiting up to `timeout` for each. nullopt when none answers.
std::optional<std::string> forward(std::string_view query, const std::vector<std::string>& servers,
                                   std::chrono::milliseconds timeout);

}  // namespace banger::dns
