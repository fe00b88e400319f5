#pragma once
// A `connect` channel of the agent protocol (docs/agent-protocol.md,
// "connect: a channel to a guest port"): the bytes between one local socket
// and the peer, in data frames on one channel of a session. The agent runs
// one per guest socket, the host (AgentDialer) one per socketpair it handed
// out; both sides follow the same rules, so the code is shared.
//
// Flow control is per channel and credit based (like SSH's window): a side
// sends at most kChannelWindow bytes the peer has not yet delivered to its
// own socket, and the peer grants bytes back with `window` frames as it
// delivers them. So a slow reader on one side stalls its own channel only,
// and each side buffers at most kChannelWindow per channel (enforced: a
// peer that ignores the window loses the channel), with at most
// kMaxChannels channels per session.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "engine/core/unique_fd.hpp"
#include "engine/guest/protocol.hpp"

namespace banger::guest {

inline constexpr std::int64_t kChannelWindow = 128 * 1024;
inline constexpr std::int64_t kWindowUpdate = kChannelWindow / 4;  // grant back in steps this large
inline constexpr size_t kMaxChannels = 64;
inline constexpr size_t kMaxDatagram = 65535;

struct ConnectRequest {
  std::string proto;  // "tcp" | "udp"
  int port = 0;       // 1..65535 on the guest's 127.0.0.1
  bool operator==(const ConnectRequest&) const = default;
};

nlohmann::json to_json(const ConnectRequest& r);
ConnectRequest parse_connect(const nlohmann::json& j);  // EINVAL naming the field

using SendFrame = std::function<void(FrameType, std::uint32_t channel, std::string_view payload)>;

class ConnectChannel {
 public:
  // `local` must be non-blocking. A datagram channel carries one datagram
  // per data frame and has no half-close: data_eof from the peer ends it.
  ConnectChannel(std::uint32_t id, UniqueFd local, bool datagram);

  std::uint32_t id() const { return id_; }
  int fd() const { return local_.get(); }
  short events() const;  // what to poll the local socket for
  void on_ready(short revents, const SendFrame& send);
  void on_frame(const Frame& f, const SendFrame& send);
  // Ends the channel and tells the peer (an `error` frame).
  void abort(const std::string& code, const std::string& message, const SendFrame& send);
  bool ended() const;
  size_t queued() const { return queued_; }

 private:
  void read_local(const SendFrame& send);
  void write_local(const SendFrame& send);
  void delivered(size_t n, const SendFrame& send);

  std::uint32_t id_;
  UniqueFd local_;
  bool datagram_;
  std::int64_t credit_ = kChannelWindow;  // bytes we may still send to the peer
  std::deque<std::string> queue_;         // from the peer, not yet written to local_
  size_t queue_offset_ = 0;               // written part of queue_.front() (streams)
  size_t queued_ = 0;
  std::int64_t ungranted_ = 0;  // delivered to local_ and not yet granted back
  bool local_eof_ = false;      // local_ said EOF; data_eof sent
  bool peer_eof_ = false;       // data_eof received
  bool shut_wr_ = false;        // local_ was shut down for writing after peer_eof_
  bool ended_ = false;
};

}  // namespace banger::guest
