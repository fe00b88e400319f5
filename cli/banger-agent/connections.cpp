#include "connections.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "engine/core/error.hpp"

namespace banger::agent {
using guest::FrameType;

namespace {

// A port that accepts nothing (a full backlog drops SYNs) must not hold a
// channel for ever.
constexpr long long kConnectTimeoutMs = 10000;

long long now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

}  // namespace

void Connections::connect(const guest::Frame& f) {
  auto error = [&](const std::string& code, const std::string& msg) {
    send_(FrameType::error, f.channel, nlohmann::json{{"code", code}, {"message", msg}}.dump());
  };
  guest::ConnectRequest r = guest::parse_connect(f.json());
  if (open_.count(f.channel) || pending_.count(f.channel)) return error("EBUSY", "channel already in use");
  if (open_.size() + pending_.size() >= guest::kMaxChannels) {
    return error("EMFILE", "at most " + std::to_string(guest::kMaxChannels) + " connect channels per session");
  }
  bool datagram = r.proto == "udp";
  UniqueFd fd(::socket(AF_INET, (datagram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return error(errno_name(errno), std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(r.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  int err = rc == 0 ? 0 : errno;
  pending_.emplace(f.channel, Pending{std::move(fd), datagram, r.port, now_ms() + kConnectTimeoutMs});
  if (err != EINPROGRESS) finish_connect(f.channel, err);
}

void Connections::finish_connect(std::uint32_t ch, int err) {
  auto it = pending_.find(ch);
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (err != 0) {
    std::string msg = "connect " + std::string(p.datagram ? "udp" : "tcp") + " 127.0.0.1:" + std::to_string(p.port) +
                      ": " + std::strerror(err);
    send_(FrameType::error, ch, nlohmann::json{{"code", errno_name(err)}, {"message", msg}}.dump());
    return;
  }
  send_(FrameType::ok, ch, "{}");
  open_.emplace(ch, guest::ConnectChannel(ch, std::move(p.fd), p.datagram));
}

bool Connections::on_frame(const guest::Frame& f) {
  if (auto it = open_.find(f.channel); it != open_.end()) {
    it->second.on_frame(f, send_);
    if (it->second.ended()) open_.erase(it);
    return true;
  }
  if (auto it = pending_.find(f.channel); it != pending_.end()) {
    // The host gave up on it (nothing else comes before `ok`).
    if (f.type == FrameType::error) pending_.erase(it);
    return true;
  }
  return false;
}

void Connections::add_pollfds(std::vector<pollfd>& fds) {
  polled_.clear();
  for (auto& [ch, p] : pending_) {
    fds.push_back({p.fd.get(), POLLOUT, 0});
    polled_.push_back(ch);
  }
  for (auto& [ch, c] : open_) {
    // A socket with nothing to wait for is left out: its hang-up would wake the poll for ever.
    short ev = c.events();
    if (!ev) continue;
    fds.push_back({c.fd(), ev, 0});
    polled_.push_back(ch);
  }
}

void Connections::on_poll(const pollfd* fds, size_t n) {
  for (size_t i = 0; i < n && i < polled_.size(); ++i) {
    if (!fds[i].revents) continue;
    std::uint32_t ch = polled_[i];
    if (auto it = pending_.find(ch); it != pending_.end()) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(it->second.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      finish_connect(ch, err);
      continue;
    }
    if (auto it = open_.find(ch); it != open_.end()) {
      it->second.on_ready(fds[i].revents, send_);
      if (it->second.ended()) open_.erase(it);
    }
  }
  expire();
}

void Connections::expire() {
  long long now = now_ms();
  for (auto it = pending_.begin(); it != pending_.end();) {
    auto next = std::next(it);
    if (now >= it->second.deadline_ms) finish_connect(it->first, ETIMEDOUT);
    it = next;
  }
}

void Connections::clear() {
  pending_.clear();
  open_.clear();
  polled_.clear();
}

}  // namespace banger::agent
