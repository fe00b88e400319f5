#include "engine/net/port_forward.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <vector>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::net {

const char* proto_name(ForwardProto p) { return p == ForwardProto::tcp ? "tcp" : "udp"; }

namespace {

using Clock = std::chrono::steady_clock;

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw Error::last("fcntl O_NONBLOCK");
}

sockaddr_in ipv4(const std::string& address, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    throw Error("EINVAL", "invalid IPv4 address '" + address + "'");
  }
  return a;
}

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

// One direction of a TCP connection: bytes read from `from`, not yet
// written to `to`. A bounded buffer: a slow reader holds the writer back
// (we stop reading) instead of growing memory.
struct Flow {
  std::vector<char> buf;
  std::size_t head = 0, tail = 0;
  bool eof = false;       // `from` said it sends no more
  bool shut = false;      // and `to` has been told (shutdown SHUT_WR)
  bool failed = false;

  // Moves what it can without blocking; returns false on a hard error.
  void pump(int from, int to) {
    for (;;) {
      bool progress = false;
      if (!eof && tail < buf.size()) {
        ssize_t n = ::recv(from, buf.data() + tail, buf.size() - tail, 0);
        if (n > 0) {
          tail += static_cast<std::size_t>(n);
          progress = true;
        } else if (n == 0) {
          eof = true;
          progress = true;
        } else if (!would_block(errno)) {
          failed = true;
          return;
        }
      }
      if (head < tail) {
        ssize_t n = ::send(to, buf.data() + head, tail - head, MSG_NOSIGNAL);
        if (n > 0) {
          head += static_cast<std::size_t>(n);
          if (head == tail) head = tail = 0;
          progress = true;
        } else if (n < 0 && !would_block(errno)) {
          failed = true;
          return;
        }
      }
      if (eof && head == tail && !shut) {
        // Half-close: the other side sees EOF and may still answer.
        ::shutdown(to, SHUT_WR);
        shut = true;
      }
      if (!progress) return;
    }
  }
  short from_events() const { return !eof && tail < buf.size() ? POLLIN : 0; }
  short to_events() const { return head < tail ? POLLOUT : 0; }
};

struct TcpConn {
  UniqueFd client, guest;
  Flow up, down;  // client -> guest, guest -> client
  bool done() const { return up.failed || down.failed || (up.shut && down.shut); }
};

struct UdpClient {
  UniqueFd guest;
  sockaddr_in peer{};
  Clock::time_point last;
};

struct Listener {
  ForwardRule rule;
  UniqueFd fd;
  std::uint16_t port = 0;
  std::map<std::uint64_t, UdpClient> clients;  // udp: by peer address and port
};

std::uint64_t peer_key(const sockaddr_in& a) {
  return (static_cast<std::uint64_t>(a.sin_addr.s_addr) << 16) | a.sin_port;
}

}  // namespace

AddressDialer::AddressDialer(const std::string& guest_ipv4) : addr_(ipv4(guest_ipv4, 0).sin_addr.s_addr) {}

UniqueFd AddressDialer::dial(ForwardProto proto, std::uint16_t guest_port) {
  int type = proto == ForwardProto::tcp ? SOCK_STREAM : SOCK_DGRAM;
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw Error::last("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(guest_port);
  a.sin_addr.s_addr = addr_;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    char ip[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &a.sin_addr, ip, sizeof ip);
    throw Error::last("connect", std::string(ip) + ":" + std::to_string(guest_port));
  }
  return fd;
}

// What to wait for on `fd`, which `in` reads from and `out` writes to.
// Errors and hang-ups are always reported, except while `in` is held back
// by a full buffer: then the fd is left out, or a hang-up with data still
// unread would wake the loop until the other side drains.
pollfd watch(int fd, const Flow& in, const Flow& out) {
  short events = static_cast<short>(in.from_events() | out.to_events());
  bool held_back = !in.eof && events == 0;
  return {held_back ? -1 : fd, events, 0};
}

// After pumping: a pending socket error, or a hang-up while `out` still
// had to be delivered (a reset: we never shut it ourselves), ends the
// connection.
void check_hangup(const pollfd& p, Flow& in, Flow& out) {
  if (p.revents & POLLERR) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) in.failed = true;
  }
  if ((p.revents & POLLHUP) && in.eof && !out.shut) out.failed = true;
}

struct PortForwarder::Impl {
  GuestDialer& dialer;
  ForwardLimits limits;
  std::vector<Listener> listeners;
  std::vector<std::unique_ptr<TcpConn>> conns;

  std::size_t udp_clients() const {
    std::size_t n = 0;
    for (const auto& l : listeners) n += l.clients.size();
    return n;
  }
  bool full() const { return conns.size() + udp_clients() >= limits.max_connections; }

  void bind_listener(Listener& l) {
    const ForwardRule& r = l.rule;
    sockaddr_in a = ipv4(r.host_address, r.host_port);
    bool tcp = r.proto == ForwardProto::tcp;
    l.fd.reset(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!l.fd) throw Error::last("socket");
    if (tcp) {
      // Lets a restarted forwarder bind while old connections linger in
      // TIME_WAIT; on Linux it never lets two listeners share a port.
      int one = 1;
      ::setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    }
    std::string subject = r.host_address + ":" + std::to_string(r.host_port) + "/" + proto_name(r.proto);
    if (::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      if (e == EADDRINUSE) throw Error("EADDRINUSE", "host port " + subject + " is already in use by another program");
      if (e == EACCES) throw Error("EACCES", "binding host port " + subject + " needs privilege");
      if (e == EADDRNOTAVAIL) throw Error("EADDRNOTAVAIL", "no interface on this host has address " + r.host_address);
      throw Error::sys(e, "bind", subject);
    }
    if (tcp && ::listen(l.fd.get(), 128) != 0) throw Error::last("listen", subject);
    socklen_t len = sizeof a;
    ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    l.port = ntohs(a.sin_port);
  }

  void accept_tcp(Listener& l) {
    while (!full()) {
      UniqueFd client(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!client) return;  // EAGAIN, or a client that already went away
      auto c = std::make_unique<TcpConn>();
      try {
        c->guest = dialer.dial(ForwardProto::tcp, l.rule.guest_port);
        set_nonblocking(c->guest.get());
      } catch (const std::exception&) {
        continue;  // the guest cannot be reached: this client is closed
      }
      c->client = std::move(client);
      c->up.buf.resize(limits.buffer_bytes);
      c->down.buf.resize(limits.buffer_bytes);
      conns.push_back(std::move(c));
    }
  }

  void receive_udp(Listener& l, std::vector<char>& buf) {
    for (int i = 0; i < 64; ++i) {  // bounded, so one busy port cannot starve the rest
      sockaddr_in peer{};
      socklen_t plen = sizeof peer;
      ssize_t n = ::recvfrom(l.fd.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
      if (n < 0) return;
      auto it = l.clients.find(peer_key(peer));
      if (it == l.clients.end()) {
        if (full()) continue;  // dropped, as a full queue would
        UdpClient c;
        try {
          c.guest = dialer.dial(ForwardProto::udp, l.rule.guest_port);
          set_nonblocking(c.guest.get());
        } catch (const std::exception&) {
          continue;
        }
        c.peer = peer;
        it = l.clients.emplace(peer_key(peer), std::move(c)).first;
      }
      it->second.last = Clock::now();
      ::send(it->second.guest.get(), buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
    }
  }

  void reply_udp(Listener& l, UdpClient& c, std::vector<char>& buf) {
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::recv(c.guest.get(), buf.data(), buf.size(), 0);
      if (n < 0) {
        // ECONNREFUSED: the guest port is closed (an ICMP error); the
        // client may try again, so the association stays until idle.
        return;
      }
      c.last = Clock::now();
      ::sendto(l.fd.get(), buf.data(), static_cast<std::size_t>(n), 0, reinterpret_cast<const sockaddr*>(&c.peer),
               sizeof c.peer);
    }
  }

  void expire_udp(Clock::time_point now) {
    for (auto& l : listeners) {
      for (auto it = l.clients.begin(); it != l.clients.end();) {
        it = now - it->second.last >= limits.udp_idle ? l.clients.erase(it) : std::next(it);
      }
    }
  }

  void step(std::chrono::milliseconds timeout, std::vector<char>& dgram) {
    // The order of `fds` follows listeners, then each listener's UDP
    // clients, then TCP connections (client, guest).
    std::vector<pollfd> fds;
    bool accepting = !full();
    for (auto& l : listeners) fds.push_back({l.fd.get(), static_cast<short>(accepting || l.rule.proto == ForwardProto::udp ? POLLIN : 0), 0});
    for (auto& l : listeners) {
      for (auto& [key, c] : l.clients) fds.push_back({c.guest.get(), POLLIN, 0});
    }
    for (auto& c : conns) {
      fds.push_back(watch(c->client.get(), c->up, c->down));
      fds.push_back(watch(c->guest.get(), c->down, c->up));
    }
    if (cancel::poll(fds.data(), fds.size(), timeout) <= 0) return;

    std::size_t i = 0;
    std::vector<Listener*> ready;
    for (auto& l : listeners) {
      if (fds[i++].revents) ready.push_back(&l);
    }
    for (auto& l : listeners) {
      for (auto& [key, c] : l.clients) {
        if (fds[i++].revents) reply_udp(l, c, dgram);
      }
    }
    for (auto& c : conns) {
      bool active = fds[i].revents || fds[i + 1].revents;
      i += 2;
      if (active) {
        c->up.pump(c->client.get(), c->guest.get());
        c->down.pump(c->guest.get(), c->client.get());
        check_hangup(fds[i - 2], c->up, c->down);
        check_hangup(fds[i - 1], c->down, c->up);
      }
    }
    std::erase_if(conns, [](const std::unique_ptr<TcpConn>& c) { return c->done(); });
    // New clients last: the vectors above are not changed while indexed.
    for (Listener* l : ready) {
      if (l->rule.proto == ForwardProto::tcp) accept_tcp(*l);
      else receive_udp(*l, dgram);
    }
  }
};

PortForwarder::PortForwarder(std::vector<ForwardRule> rules, GuestDialer& dialer, ForwardLimits limits)
    : impl_(std::make_unique<Impl>(Impl{dialer, limits, {}, {}})) {
  if (limits.buffer_bytes == 0 || limits.max_connections == 0) throw Error("EINVAL", "port forwarder: zero limits");
  impl_->listeners.resize(rules.size());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    impl_->listeners[i].rule = std::move(rules[i]);
    impl_->bind_listener(impl_->listeners[i]);
  }
}

PortForwarder::~PortForwarder() = default;

std::uint16_t PortForwarder::bound_port(std::size_t i) const { return impl_->listeners.at(i).port; }

std::size_t PortForwarder::active() const { return impl_->conns.size() + impl_->udp_clients(); }

void PortForwarder::run_for(std::chrono::milliseconds duration) {
  std::vector<char> dgram(65536);
  auto end = Clock::now() + duration;
  for (;;) {
    auto now = Clock::now();
    impl_->expire_udp(now);
    if (now >= end) return;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - now);
    // wake at least once a second to expire idle UDP clients
    impl_->step(std::min(left, std::chrono::milliseconds(1000)) + std::chrono::milliseconds(1), dgram);
  }
}

}  // namespace banger::net
