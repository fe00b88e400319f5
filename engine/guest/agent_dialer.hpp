#pragma once
// Port forwarding through the guest agent, for VMs without a network
// (docs/agent-protocol.md, "connect"): a GuestDialer whose connections are
// `connect` channels of one agent session. Each dial hands out one end of a
// socketpair (SOCK_STREAM for tcp, SOCK_SEQPACKET for udp: one record per
// datagram) and a thread of its own pumps the other end to the channel, so
// the forwarder treats it like any socket. Closing the returned descriptor
// closes the channel. A session that drops fails its open channels and is
// made again on the next dial.
#include <chrono>
#include <memory>
#include <mutex>

#include "engine/guest/agent_client.hpp"
#include "engine/net/port_forward.hpp"

namespace banger::guest {

// Where a VM whose agent is at `agent` takes forwarding sessions: on QEMU
// the second serial port (forward.sock beside agent.sock), since the agent's
// port is one stream that `vm exec` takes over; over vsock port 52 itself,
// where every connection is a session of its own.
Endpoint forward_endpoint(const Endpoint& agent);

class AgentDialer final : public net::GuestDialer {
 public:
  // `timeout` bounds the handshake and each connect's answer.
  explicit AgentDialer(Endpoint ep, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  ~AgentDialer() override;
  AgentDialer(const AgentDialer&) = delete;
  AgentDialer& operator=(const AgentDialer&) = delete;

  // Throws the agent's error (ECONNREFUSED naming the port, ...), ENOTSUP
  // for an agent without `connect`, ENOENT for a VM started without a
  // forwarding port.
  UniqueFd dial(net::ForwardProto proto, std::uint16_t guest_port) override;

  // Opens the forwarding session now, so a VM that cannot forward is told
  // before the forwarder reports ready, not by each client's connection
  // closing: ENOENT (no forwarding port), ENOTSUP (no `connect`), ETIMEDOUT
  // (nothing serves the port: an agent from before it existed).
  void connect();

  // Channels open in the current session (tests, diagnostics).
  size_t open_channels();
  // Sessions made so far (a reconnect makes another).
  int sessions();

 private:
  class Pump;
  std::shared_ptr<Pump> live_pump();

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::shared_ptr<Pump> pump_;
  int sessions_ = 0;
};

}  // namespace banger::guest
