#pragma once
// The wire protocol between banger and its guest agent (docs/agent-protocol.md).
//
// A frame is a 13-byte header and a payload:
//   "BGR1"  magic (resynchronisation point on a shared serial stream)
//   u8      type
//   u32 be  channel (request id; 0 for session control)
//   u32 be  payload length (at most kMaxPayload)
// Control payloads are JSON objects; data payloads are raw bytes.
//
// Version rule: kProtocolMajor must match exactly; the minor version only
// adds optional fields and frame types a peer may ignore.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace banger::guest {

inline constexpr int kProtocolMajor = 1;
inline constexpr int kProtocolMinor = 3;  // 1: reidentify, mount; 2: listeners, connect, window; 3: list, remove
inline constexpr std::string_view kMagic = "BGR1";
inline constexpr size_t kHeaderSize = 13;
inline constexpr std::uint32_t kMaxPayload = 1 << 20;
inline constexpr size_t kDataChunk = 64 * 1024;

enum class FrameType : std::uint8_t {
  hello = 1,      // host -> agent {proto, host_version, session}
  hello_ok = 2,   // agent -> host {proto, agent_version, session, hostname, kernel}
  error = 3,      // either way {code, message}
  exec = 10,      // host -> agent {argv, env, cwd, stdin}
  started = 11,   // agent -> host {pid}
  stdin_data = 12,
  stdin_eof = 13,
  stdout_data = 14,
  stderr_data = 15,
  exit = 16,      // agent -> host {code, signal}
  signal = 17,    // host -> agent {signal}
  put = 20,       // host -> agent {path, mode, uid, gid}; data frames; data_eof
  get = 21,       // host -> agent {path}; agent answers data frames + data_eof
  data = 22,
  data_eof = 23,
  ok = 24,        // agent -> host {} (put finished, etc.)
  ping = 30,
  pong = 31,
  poweroff = 32,  // host -> agent: clean shutdown of the guest
  reidentify = 33,  // host -> agent: ReidentifyRequest; answered ok {ssh_host_keys, took_ms, repeated}
  mount = 34,       // host -> agent: MountRequest; answered ok {device}
  connect = 35,     // host -> agent: ConnectRequest; answered ok, then data/data_eof both ways (connect_channel.hpp)
  listeners = 36,   // host -> agent {}; answered ok {listeners, truncated} (engine/guest/listeners.hpp)
  window = 37,      // either way on a connect channel {bytes}: the receiver delivered that many more bytes
  list = 38,        // host -> agent {path}; answered ok {entries, truncated} (engine/guest/files.hpp)
  remove = 39,      // host -> agent {path, recursive}; answered ok {}
};

bool known_type(std::uint8_t t);

struct Frame {
  FrameType type{};
  std::uint32_t channel = 0;
  std::string payload;

  nlohmann::json json() const;  // throws EPROTO when the payload is not a JSON object
};

std::string encode(FrameType type, std::uint32_t channel, std::string_view payload);
std::string encode_json(FrameType type, std::uint32_t channel, const nlohmann::json& body);

// Incremental decoder. Bytes that do not start a frame are skipped up to the
// next magic (counted in skipped()), so a reader can join a stream mid-way.
// A header with an unknown type or an oversized length is skipped the same
// way: a corrupt frame can never make the reader allocate or block forever.
class FrameReader {
 public:
  void feed(std::string_view bytes);
  std::optional<Frame> next();
  size_t skipped() const { return skipped_; }
  size_t buffered() const { return buf_.size(); }

 private:
  std::string buf_;
  size_t skipped_ = 0;
};

}  // namespace banger::guest
