#include "engine/guest/connect_channel.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/core/error.hpp"

namespace banger::guest {

nlohmann::json to_json(const ConnectRequest& r) { return {{"proto", r.proto}, {"port", r.port}}; }

ConnectRequest parse_connect(const nlohmann::json& j) {
  ConnectRequest r;
  auto proto = j.find("proto");
  if (proto == j.end() || !proto->is_string()) throw Error("EINVAL", "connect: proto must be \"tcp\" or \"udp\"");
  r.proto = proto->get<std::string>();
  if (r.proto != "tcp" && r.proto != "udp") throw Error("EINVAL", "connect: proto must be \"tcp\" or \"udp\", not \"" + r.proto + "\"");
  auto port = j.find("port");
  if (port == j.end() || !port->is_number_integer()) throw Error("EINVAL", "connect: port must be an integer");
  auto p = port->get<std::int64_t>();
  if (p < 1 || p > 65535) throw Error("EINVAL", "connect: port must be 1 to 65535, not " + std::to_string(p));
  r.port = static_cast<int>(p);
  return r;
}

ConnectChannel::ConnectChannel(std::uint32_t id, UniqueFd local, bool datagram)
    : id_(id), local_(std::move(local)), datagram_(datagram) {}

bool ConnectChannel::ended() const {
  if (ended_) return true;
  return !datagram_ && local_eof_ && peer_eof_ && queue_.empty();
}

short ConnectChannel::events() const {
  if (ended()) return 0;
  short ev = 0;
  // Reading only while the peer has room is what bounds its buffer; a
  // stream's local socket then fills and TCP slows the guest (or host) sender.
  if (!local_eof_ && credit_ > 0) ev |= POLLIN;
  if (!queue_.empty()) ev |= POLLOUT;
  return ev;
}

void ConnectChannel::abort(const std::string& code, const std::string& message, const SendFrame& send) {
  if (ended_) return;
  ended_ = true;
  local_.reset();
  queue_.clear();
  queued_ = 0;
  send(FrameType::error, id_, nlohmann::json{{"code", code}, {"message", message}}.dump());
}

void ConnectChannel::on_ready(short revents, const SendFrame& send) {
  if (ended()) return;
  if (revents & POLLOUT) write_local(send);
  if (ended()) return;
  if (revents & (POLLIN | POLLHUP | POLLERR)) read_local(send);
}

void ConnectChannel::read_local(const SendFrame& send) {
  if (local_eof_ || credit_ <= 0) return;
  char buf[std::max(kMaxDatagram, kDataChunk)];  // a whole datagram, or a stream chunk
  if (datagram_) {
    // One datagram per frame. It may overdraw the credit by one datagram:
    // cutting it would change what the receiver sees.
    ssize_t n = ::recv(local_.get(), buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED) return;  // UDP: an earlier send was refused
      return abort(errno_name(errno), std::string("recv: ") + std::strerror(errno), send);
    }
    if (n == 0) {
      // SOCK_SEQPACKET (the host's socketpair): the user closed it. UDP's
      // empty datagrams are not carried.
      int type = 0;
      socklen_t len = sizeof type;
      if (::getsockopt(local_.get(), SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM) return;
      local_eof_ = true;
      ended_ = true;
      local_.reset();
      send(FrameType::data_eof, id_, {});
      return;
    }
    if (static_cast<size_t>(n) > sizeof buf) return;  // truncated: no UDP datagram is that large
    credit_ -= n;
    send(FrameType::data, id_, std::string_view(buf, static_cast<size_t>(n)));
    return;
  }
  size_t want = std::min<std::int64_t>(credit_, static_cast<std::int64_t>(kDataChunk));
  ssize_t n = ::recv(local_.get(), buf, want, MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    return abort(errno_name(errno), std::string("recv: ") + std::strerror(errno), send);
  }
  if (n == 0) {
    local_eof_ = true;
    send(FrameType::data_eof, id_, {});
    return;
  }
  credit_ -= n;
  send(FrameType::data, id_, std::string_view(buf, static_cast<size_t>(n)));
}

void ConnectChannel::write_local(const SendFrame& send) {
  while (!queue_.empty()) {
    const std::string& front = queue_.front();
    if (datagram_) {
      ssize_t n = ::send(local_.get(), front.data(), front.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n < 0 && errno != ECONNREFUSED && errno != EMSGSIZE) {
        return abort(errno_name(errno), std::string("send: ") + std::strerror(errno), send);
      }
      // Sent, or refused or too large: UDP drops it either way, and the
      // peer gets its credit back.
      size_t size = front.size();
      queued_ -= size;
      queue_.pop_front();
      delivered(size, send);
      continue;
    }
    std::string_view rest = std::string_view(front).substr(queue_offset_);
    ssize_t n = ::send(local_.get(), rest.data(), rest.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      // EPIPE: the local side is gone (on the host, the user closed the
      // descriptor dial returned): the channel ends, like a TCP reset.
      return abort(errno_name(errno), std::string("send: ") + std::strerror(errno), send);
    }
    queue_offset_ += static_cast<size_t>(n);
    queued_ -= static_cast<size_t>(n);
    if (queue_offset_ == front.size()) {
      queue_.pop_front();
      queue_offset_ = 0;
    }
    delivered(static_cast<size_t>(n), send);
  }
  if (peer_eof_ && !shut_wr_) {
    shut_wr_ = true;
    ::shutdown(local_.get(), SHUT_WR);
  }
}

void ConnectChannel::delivered(size_t n, const SendFrame& send) {
  ungranted_ += static_cast<std::int64_t>(n);
  if (ungranted_ >= kWindowUpdate) {
    send(FrameType::window, id_, nlohmann::json{{"bytes", ungranted_}}.dump());
    ungranted_ = 0;
  }
}

void ConnectChannel::on_frame(const Frame& f, const SendFrame& send) {
  if (ended_) return;
  switch (f.type) {
    case FrameType::data: {
      if (peer_eof_) return abort("EPROTO", "data after data_eof", send);
      if (f.payload.empty()) return;
      // The peer may have kChannelWindow bytes in flight (one datagram more):
      // beyond that it ignores the window, and must not make us buffer without bound.
      std::int64_t limit = kChannelWindow + (datagram_ ? static_cast<std::int64_t>(kMaxDatagram) : 0);
      if (static_cast<std::int64_t>(queued_ + f.payload.size()) > limit) {
        return abort("EOVERFLOW", "the peer sent past the channel's window", send);
      }
      queued_ += f.payload.size();
      queue_.push_back(f.payload);
      return write_local(send);
    }
    case FrameType::data_eof:
      if (datagram_) {
        ended_ = true;
        local_.reset();
        return;
      }
      peer_eof_ = true;
      return write_local(send);
    case FrameType::window: {
      auto j = nlohmann::json::parse(f.payload, nullptr, false);
      auto bytes = j.is_object() ? j.value("bytes", std::int64_t{0}) : 0;
      if (bytes <= 0 || bytes > kChannelWindow + static_cast<std::int64_t>(kMaxDatagram)) {
        return abort("EPROTO", "bad window grant", send);
      }
      credit_ = std::min(credit_ + bytes, kChannelWindow);
      return;
    }
    case FrameType::error:
      // The peer ended the channel: no answer.
      ended_ = true;
      local_.reset();
      queue_.clear();
      queued_ = 0;
      return;
    default: return;
  }
}

}  // namespace banger::guest
