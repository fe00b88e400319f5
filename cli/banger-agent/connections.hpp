#pragma once
// The agent's `connect` channels of one session (docs/agent-protocol.md):
// sockets to 127.0.0.1 ports inside the guest, many at once, each pumped by
// a guest::ConnectChannel. The session polls their sockets beside its own
// stream and hands them the frames of their channels.
#include <poll.h>

#include <cstdint>
#include <map>
#include <vector>

#include "engine/core/unique_fd.hpp"
#include "engine/guest/connect_channel.hpp"

namespace banger::agent {

class Connections {
 public:
  explicit Connections(guest::SendFrame send) : send_(std::move(send)) {}

  // A `connect` request: answered `ok` once connected, or `error`.
  void connect(const guest::Frame& f);
  // Frames of an open or pending channel; false when `f` is not for one.
  bool on_frame(const guest::Frame& f);
  // Appends the sockets to poll; on_poll takes the same entries back.
  void add_pollfds(std::vector<pollfd>& fds);
  void on_poll(const pollfd* fds, size_t n);
  // Connections still being made, whose deadline the caller's poll must not sleep past.
  bool connecting() const { return !pending_.empty(); }
  // A new host session: every channel of the previous one is closed.
  void clear();

 private:
  struct Pending {
    UniqueFd fd;
    bool datagram;
    int port;
    long long deadline_ms;
  };
  void finish_connect(std::uint32_t ch, int err);
  void expire();

  guest::SendFrame send_;
  std::map<std::uint32_t, Pending> pending_;
  std::map<std::uint32_t, guest::ConnectChannel> open_;
  std::vector<std::uint32_t> polled_;  // channel of each entry add_pollfds appended
};

}  // namespace banger::agent
