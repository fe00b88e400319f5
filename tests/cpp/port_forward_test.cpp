// The port forwarder's loop with real sockets: a "guest" listening on
// 127.0.0.1, the forwarder on another loopback port, clients connecting
// through it. TCP both ways with half-close, several connections at once,
// UDP both ways per client, a port in use.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/net/port_forward.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace banger::net;
using namespace std::chrono_literals;

namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

UniqueFd listen_tcp() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(0);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd.get(), 16) == 0);
  return fd;
}

UniqueFd bound_udp(std::uint16_t port = 0) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

UniqueFd connect_tcp(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    off += static_cast<std::size_t>(n);
  }
}

// Everything until EOF (a 10 s receive timeout fails the test).
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n >= 0);
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Runs the forwarder's loop on a thread until destroyed.
class Running {
 public:
  explicit Running(PortForwarder& f) : thread_([&f, this] {
      while (!stop_) f.run_for(20ms);
    }) {}
  ~Running() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string pattern(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

}  // namespace

TEST_CASE("port forwarder: TCP both ways with half-close, several connections at once", "[port_forward]") {
  UniqueFd guest = listen_tcp();
  AddressDialer dialer("127.0.0.1");
  // A small buffer so the larger payloads go through many rounds of back-pressure.
  PortForwarder fwd({{ForwardProto::tcp, "127.0.0.1", 0, port_of(guest.get())}}, dialer,
                    ForwardLimits{.buffer_bytes = 4096});
  std::uint16_t port = fwd.bound_port(0);
  REQUIRE(port != 0);
  Running running(fwd);

  constexpr int kClients = 5;
  std::vector<UniqueFd> clients;
  std::vector<std::string> sent;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_tcp(port));
    sent.push_back(pattern(200000 + static_cast<std::size_t>(i) * 1000, static_cast<char>('a' + i)));
  }
  // The guest accepts all of them first: they are open at once.
  std::vector<UniqueFd> accepted;
  for (int i = 0; i < kClients; ++i) {
    pollfd p{guest.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    accepted.emplace_back(::accept4(guest.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted.back());
    timeval tv{10, 0};
    ::setsockopt(accepted.back().get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // Each client sends its bytes and half-closes from a thread; the guest
  // side reads to EOF (the half-close reached it), then answers on the same
  // connection, which still carries bytes the other way, and closes.
  std::vector<std::thread> senders;
  for (int i = 0; i < kClients; ++i) {
    senders.emplace_back([&, i] {
      send_all(clients[static_cast<std::size_t>(i)].get(), sent[static_cast<std::size_t>(i)]);
      ::shutdown(clients[static_cast<std::size_t>(i)].get(), SHUT_WR);
    });
  }
  std::vector<std::string> got(kClients);
  for (auto& a : accepted) {
    std::string in = read_to_eof(a.get());
    // which client is this? its first byte says
    REQUIRE(!in.empty());
    int who = in[0] - 'a';
    REQUIRE(who >= 0);
    REQUIRE(who < kClients);
    got[static_cast<std::size_t>(who)] = in;
    send_all(a.get(), "reply to " + std::to_string(who) + " after EOF: " + std::to_string(in.size()));
    a.reset();
  }
  for (auto& t : senders) t.join();
  for (int i = 0; i < kClients; ++i) {
    auto idx = static_cast<std::size_t>(i);
    CHECK(got[idx] == sent[idx]);
    CHECK(read_to_eof(clients[idx].get()) ==
          "reply to " + std::to_string(i) + " after EOF: " + std::to_string(sent[idx].size()));
  }
  // Both directions ended: the forwarder let go of every connection.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fwd.active() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  CHECK(fwd.active() == 0);
}

TEST_CASE("port forwarder: a refused guest port closes the client, the listener keeps serving", "[port_forward]") {
  UniqueFd closed = listen_tcp();
  std::uint16_t dead_port = port_of(closed.get());
  closed.reset();  // nothing listens there now
  AddressDialer dialer("127.0.0.1");
  PortForwarder fwd({{ForwardProto::tcp, "127.0.0.1", 0, dead_port}}, dialer);
  Running running(fwd);
  UniqueFd c = connect_tcp(fwd.bound_port(0));
  char b;
  ssize_t n = ::recv(c.get(), &b, 1, 0);
  CHECK(n <= 0);  // EOF or reset, never a hang (the receive timeout is 10 s)
  CHECK((n == 0 || errno == ECONNRESET));
}

TEST_CASE("port forwarder: UDP both ways, one guest association per client", "[port_forward]") {
  UniqueFd guest = bound_udp();
  AddressDialer dialer("127.0.0.1");
  PortForwarder fwd({{ForwardProto::udp, "127.0.0.1", 0, port_of(guest.get())}}, dialer,
                    ForwardLimits{.udp_idle = 300ms});
  std::uint16_t port = fwd.bound_port(0);
  Running running(fwd);

  UniqueFd a = bound_udp(), b = bound_udp();
  sockaddr_in to = loopback(port);
  for (int round = 0; round < 2; ++round) {
    for (auto* c : {&a, &b}) {
      std::string msg = std::string(c == &a ? "from a " : "from b ") + std::to_string(round);
      REQUIRE(::sendto(c->get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
              static_cast<ssize_t>(msg.size()));
      // the guest sees it from the forwarder's per-client socket and answers there
      char buf[256];
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      ssize_t n = ::recvfrom(guest.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      REQUIRE(n == static_cast<ssize_t>(msg.size()));
      CHECK(std::string(buf, static_cast<std::size_t>(n)) == msg);
      std::string reply = "echo " + msg;
      ::sendto(guest.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      n = ::recv(c->get(), buf, sizeof buf, 0);
      REQUIRE(n > 0);
      CHECK(std::string(buf, static_cast<std::size_t>(n)) == reply);  // back to that client only
    }
  }
  CHECK(fwd.active() == 2);
  // silent clients are forgotten after udp_idle
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fwd.active() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  CHECK(fwd.active() == 0);
}

TEST_CASE("port forwarder: a host port in use is EADDRINUSE naming it, and nothing is left bound", "[port_forward]") {
  UniqueFd taken = listen_tcp();
  std::uint16_t port = port_of(taken.get());
  UniqueFd udp_taken = bound_udp();
  std::uint16_t uport = port_of(udp_taken.get());
  AddressDialer dialer("127.0.0.1");
  std::string message;
  try {
    PortForwarder fwd({{ForwardProto::tcp, "127.0.0.1", 0, 80}, {ForwardProto::tcp, "127.0.0.1", port, 80}}, dialer);
    FAIL("bound a port in use");
  } catch (const Error& e) {
    CHECK(e.code() == "EADDRINUSE");
    message = e.what();
  }
  CHECK(message.find("127.0.0.1:" + std::to_string(port) + "/tcp") != std::string::npos);
  CHECK(test::error_code_of([&] {
          PortForwarder fwd({{ForwardProto::udp, "127.0.0.1", uport, 53}}, dialer);
        }) == "EADDRINUSE");
  // the same port for tcp and udp is two different sockets
  PortForwarder both({{ForwardProto::tcp, "127.0.0.1", 0, 80}}, dialer);
  PortForwarder udp_same({{ForwardProto::udp, "127.0.0.1", both.bound_port(0), 80}}, dialer);
  CHECK(udp_same.bound_port(0) == both.bound_port(0));
  CHECK(test::error_code_of([&] { AddressDialer bad("not-an-ip"); }) == "EINVAL");
}
