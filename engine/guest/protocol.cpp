#include "engine/guest/protocol.hpp"

#include "engine/core/error.hpp"

namespace banger::guest {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

std::uint32_t get_u32(std::string_view s, size_t off) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[off])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[off + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[off + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[off + 3]));
}

}  // namespace

bool known_type(std::uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::hello:
    case FrameType::hello_ok:
    case FrameType::error:
    case FrameType::exec:
    case FrameType::started:
    case FrameType::stdin_data:
    case FrameType::stdin_eof:
    case FrameType::stdout_data:
    case FrameType::stderr_data:
    case FrameType::exit:
    case FrameType::signal:
    case FrameType::put:
    case FrameType::get:
    case FrameType::data:
    case FrameType::data_eof:
    case FrameType::ok:
    case FrameType::ping:
    case FrameType::pong:
    case FrameType::poweroff:
    case FrameType::reidentify:
    case FrameType::mount:
    case FrameType::listeners:
    case FrameType::connect:
    case FrameType::list:
    case FrameType::remove:
    case FrameType::window: return true;
  }
  return false;
}

nlohmann::json Frame::json() const {
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("EPROTO", "agent protocol: malformed JSON payload");
  return j;
}

std::string encode(FrameType type, std::uint32_t channel, std::string_view payload) {
  if (payload.size() > kMaxPayload) throw Error("EMSGSIZE", "agent protocol: payload too large");
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out += kMagic;
  out += static_cast<char>(type);
  put_u32(out, channel);
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  out += payload;
  return out;
}

std::string encode_json(FrameType type, std::uint32_t channel, const nlohmann::json& body) {
  return encode(type, channel, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void FrameReader::feed(std::string_view bytes) { buf_.append(bytes); }

std::optional<Frame> FrameReader::next() {
  for (;;) {
    size_t m = buf_.find(kMagic);
    if (m == std::string::npos) {
      // Keep a possible partial magic at the end.
      size_t keep = std::min(buf_.size(), kMagic.size() - 1);
      skipped_ += buf_.size() - keep;
      buf_.erase(0, buf_.size() - keep);
      return std::nullopt;
    }
    if (m > 0) {
      skipped_ += m;
      buf_.erase(0, m);
    }
    if (buf_.size() < kHeaderSize) return std::nullopt;
    auto type = static_cast<std::uint8_t>(buf_[4]);
    std::uint32_t channel = get_u32(buf_, 5);
    std::uint32_t len = get_u32(buf_, 9);
    if (!known_type(type) || len > kMaxPayload) {
      // Not a frame we can trust: drop the magic and look for the next one.
      skipped_ += kMagic.size();
      buf_.erase(0, kMagic.size());
      continue;
    }
    if (buf_.size() < kHeaderSize + len) return std::nullopt;
    Frame f;
    f.type = static_cast<FrameType>(type);
    f.channel = channel;
    f.payload = buf_.substr(kHeaderSize, len);
    buf_.erase(0, kHeaderSize + len);
    return f;
  }
}

}  // namespace banger::guest
