#pragma once
// Host-side port forwarding for one VM: listeners on host addresses, each
// accepted TCP connection or UDP client joined to a connection the
// GuestDialer opens to the guest. The dialer is the only part that knows how
// the guest is reached (its bridged address, or the agent's channel for a VM
// without network), so the loop is the same for both.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::net {

enum class ForwardProto { tcp, udp };

const char* proto_name(ForwardProto p);

// Opens a stream (tcp) or datagram (udp) connection to the guest's port.
// For udp the returned fd is SOCK_SEQPACKET/SOCK_DGRAM-like: one read or
// write is one datagram. Throws banger::Error when the guest cannot be
// reached; the forwarder then drops that one client.
class GuestDialer {
 public:
  virtual ~GuestDialer() = default;
  virtual UniqueFd dial(ForwardProto proto, std::uint16_t guest_port) = 0;
};

// A bridged guest: a socket connected to its IPv4 address. A TCP connect
// is started, not waited for (the forwarder's loop waits for it without
// holding up other clients); a refusal shows as an error on the socket.
class AddressDialer final : public GuestDialer {
 public:
  explicit AddressDialer(const std::string& guest_ipv4);
  UniqueFd dial(ForwardProto proto, std::uint16_t guest_port) override;

 private:
  std::uint32_t addr_ = 0;  // network order
};

struct ForwardRule {
  ForwardProto proto = ForwardProto::tcp;
  std::string host_address;  // IPv4
  std::uint16_t host_port = 0;  // 0: any free port (tests)
  std::uint16_t guest_port = 0;
};

struct ForwardLimits {
  std::size_t buffer_bytes = 64 * 1024;       // per direction of a TCP connection
  std::size_t max_connections = 512;          // TCP connections and UDP clients together
  std::chrono::milliseconds udp_idle{60000};  // a UDP client silent this long is forgotten
};

class PortForwarder {
 public:
  // Binds every rule's listener now, so a port in use fails here, before
  // the caller reports readiness: EADDRINUSE names the address and port.
  PortForwarder(std::vector<ForwardRule> rules, GuestDialer& dialer, ForwardLimits limits = {});
  ~PortForwarder();
  PortForwarder(const PortForwarder&) = delete;
  PortForwarder& operator=(const PortForwarder&) = delete;

  // The port rule `i` listens on (its host_port, or the one picked for 0).
  std::uint16_t bound_port(std::size_t i) const;

  // Moves bytes for up to `duration`, then returns (the caller's loop
  // decides whether to go on). Ctrl-C/SIGTERM end it with ECANCELED.
  void run_for(std::chrono::milliseconds duration);

  // Open TCP connections plus live UDP clients (tests, status).
  std::size_t active() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace banger::net
