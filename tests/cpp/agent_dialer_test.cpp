// Port forwarding through the agent (`connect` channels): the real
// banger-agent binary in --unix mode on this host (so the "guest's"
// 127.0.0.1 is ours) and real TCP and UDP servers, reached through
// AgentDialer; and the protocol rules checked with raw frames.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/unix_socket.hpp"
#include "engine/guest/agent_client.hpp"
#include "engine/guest/agent_dialer.hpp"
#include "engine/guest/connect_channel.hpp"
#include "engine/guest/protocol.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
using guest::FrameType;
using net::ForwardProto;

namespace {

const std::string kAgent = std::string(BANGER_TEST_BINARY_DIR) + "/cli/banger-agent/banger-agent";

struct RunningAgent {
  process::Child child;
  std::string socket;
  explicit RunningAgent(const test::TempDir& t) : socket(t / "agent.sock") { start(); }
  void start() {
    ::unlink(socket.c_str());
    child = process::spawn({{kAgent, "--unix", socket}, {}, {}, {}, false, {}, {}, {}});
    // A VM's socket exists from its launch (QEMU makes it): so here too,
    // before a dial looks.
    REQUIRE(test::eventually([&] { return ::access(socket.c_str(), F_OK) == 0; }));
  }
  void stop() {
    // The sessions it forked first: they hold the connections.
    std::string pid = std::to_string(child.pid());
    std::ifstream kids("/proc/" + pid + "/task/" + pid + "/children");
    for (pid_t k; kids >> k;) ::kill(k, SIGKILL);
    child.kill(SIGKILL);
    child.wait(5s);
  }
  ~RunningAgent() { stop(); }
  guest::Endpoint endpoint() const { return {guest::Endpoint::Kind::unix_socket, socket, 0, 52}; }
};

// A listening socket on 127.0.0.1 and its port.
struct Listener {
  UniqueFd fd;
  std::uint16_t port = 0;
  explicit Listener(int type = SOCK_STREAM) {
    fd.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (type == SOCK_STREAM) REQUIRE(::listen(fd.get(), 128) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  UniqueFd accept() { return UniqueFd(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC)); }
};

std::uint16_t closed_port() {
  Listener l;
  return l.port;  // nothing listens once it is closed
}

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    s.remove_prefix(static_cast<size_t>(n));
  }
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

// Bytes a non-blocking write takes before it would block (it retries for a
// moment, so data in flight through the channel is counted too).
size_t fill_until_blocked(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  std::string chunk(64 * 1024, 'x');
  size_t total = 0;
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet_since < 1500ms) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      total += static_cast<size_t>(n);
      quiet_since = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(20ms);
    }
  }
  ::fcntl(fd, F_SETFL, fl);
  return total;
}

// The frame answering channel `ch` (skipping windows and other channels).
guest::Frame next_on(guest::AgentStream& s, std::uint32_t ch, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    while (auto f = s.reader.next()) {
      if (f->channel == ch && f->type != FrameType::window) return *f;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    REQUIRE(left.count() > 0);
    pollfd p{s.fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(s.fd.get(), buf, sizeof buf);
    REQUIRE(n > 0);
    s.reader.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

std::string error_code(const guest::Frame& f) { return f.type == FrameType::error ? f.json().value("code", "") : ""; }

}  // namespace

TEST_CASE("connect request: wire form and validation", "[agent][protocol][forward]") {
  guest::ConnectRequest r{"udp", 5353};
  CHECK(guest::parse_connect(guest::to_json(r)) == r);
  auto code = [](const nlohmann::json& j) { return test::error_code_of([&] { guest::parse_connect(j); }); };
  CHECK(code({{"proto", "sctp"}, {"port", 80}}) == "EINVAL");
  CHECK(code({{"proto", "tcp"}, {"port", 0}}) == "EINVAL");
  CHECK(code({{"proto", "tcp"}, {"port", 65536}}) == "EINVAL");
  CHECK(code({{"proto", "tcp"}, {"port", "80"}}) == "EINVAL");
  CHECK(code({{"port", 80}}) == "EINVAL");
  // connect and window are frames a reader accepts (an unknown type would be skipped).
  guest::FrameReader rd;
  rd.feed(guest::encode_json(FrameType::connect, 9, guest::to_json(r)) +
          guest::encode_json(FrameType::window, 9, {{"bytes", 4096}}));
  auto a = rd.next(), b = rd.next();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->type == FrameType::connect);
  CHECK(a->channel == 9);
  CHECK(b->type == FrameType::window);
  CHECK(b->json().value("bytes", 0) == 4096);
  CHECK(guest::kProtocolMinor >= 2);  // connect and window came with 1.2
}

TEST_CASE("agent dialer: tcp both ways, half-close, two channels at once", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener l;

  // Each connection: read to EOF (the client's half-close), answer, close.
  std::thread server([&] {
    UniqueFd a = l.accept(), b = l.accept();
    std::string got_a = read_to_eof(a.get());
    std::string got_b = read_to_eof(b.get());
    write_all(a.get(), "a heard " + std::to_string(got_a.size()) + ":" + got_a.substr(0, 5));
    write_all(b.get(), "b heard " + std::to_string(got_b.size()) + ":" + got_b.substr(0, 5));
  });
  UniqueFd one = dialer.dial(ForwardProto::tcp, l.port);
  UniqueFd two = dialer.dial(ForwardProto::tcp, l.port);
  CHECK(dialer.open_channels() == 2);
  write_all(one.get(), "hello");
  write_all(two.get(), pattern(300000, 1));  // more than a window: needs grants back
  ::shutdown(one.get(), SHUT_WR);
  ::shutdown(two.get(), SHUT_WR);
  CHECK(read_to_eof(one.get()) == "a heard 5:hello");
  CHECK(read_to_eof(two.get()) == "b heard 300000:" + pattern(5, 1));
  server.join();
  CHECK(test::eventually([&] { return dialer.open_channels() == 0; }));
  CHECK(dialer.sessions() == 1);  // both rode one session
}

TEST_CASE("agent dialer: megabytes echoed both ways at once arrive intact", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener l;
  std::thread echo([&] {
    UniqueFd c = l.accept();
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(c.get(), buf, sizeof buf);
      if (n <= 0) break;
      write_all(c.get(), std::string_view(buf, static_cast<size_t>(n)));
    }
  });
  UniqueFd fd = dialer.dial(ForwardProto::tcp, l.port);
  const std::string sent = pattern(8 << 20, 7);
  std::thread writer([&] {
    write_all(fd.get(), sent);
    ::shutdown(fd.get(), SHUT_WR);
  });
  std::string back = read_to_eof(fd.get());
  writer.join();
  echo.join();
  CHECK(back.size() == sent.size());
  CHECK(back == sent);
}

TEST_CASE("agent dialer: the agent's errno for a port nobody listens on", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  std::uint16_t port = closed_port();
  try {
    dialer.dial(ForwardProto::tcp, port);
    FAIL("dial to a closed port succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == "ECONNREFUSED");
    CHECK_THAT(e.what(), Catch::Contains("127.0.0.1:" + std::to_string(port)));
  }
  // The session is fine afterwards.
  Listener l;
  UniqueFd fd = dialer.dial(ForwardProto::tcp, l.port);
  CHECK(fd);
  CHECK(dialer.sessions() == 1);
}

TEST_CASE("agent dialer: udp datagrams keep their boundaries both ways", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener udp(SOCK_DGRAM);
  UniqueFd fd = dialer.dial(ForwardProto::udp, udp.port);
  int type = 0;
  socklen_t tl = sizeof type;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &tl);
  CHECK(type == SOCK_SEQPACKET);

  const std::vector<std::string> out = {"one", pattern(1200, 3), pattern(60000, 4)};
  for (const auto& d : out) REQUIRE(::send(fd.get(), d.data(), d.size(), 0) == static_cast<ssize_t>(d.size()));
  char buf[65536];
  sockaddr_in from{};
  for (const auto& d : out) {
    socklen_t fl = sizeof from;
    ssize_t n = ::recvfrom(udp.fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    REQUIRE(n == static_cast<ssize_t>(d.size()));
    CHECK(std::string(buf, static_cast<size_t>(n)) == d);
  }
  // Answers go back to the agent's socket, one record each.
  for (const std::string& d : {std::string("a"), pattern(30000, 5)}) {
    ::sendto(udp.fd.get(), d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&from), sizeof from);
  }
  CHECK(::recv(fd.get(), buf, sizeof buf, 0) == 1);
  CHECK(buf[0] == 'a');
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) == pattern(30000, 5));
  // Closing our end closes the channel.
  fd.reset();
  CHECK(test::eventually([&] { return dialer.open_channels() == 0; }));
}

TEST_CASE("agent dialer: a slow reader stalls its own channel only, with bounded buffering", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener l;
  UniqueFd stalled = dialer.dial(ForwardProto::tcp, l.port);
  UniqueFd server = l.accept();  // never reads until later

  // Host -> guest: what the host can write before it blocks is the kernel's
  // socket buffers plus one window, not everything (without flow control the
  // dialer and the agent would read on for ever).
  size_t taken = fill_until_blocked(stalled.get());
  INFO("bytes taken before blocking: " << taken);
  CHECK(taken > 0);
  CHECK(taken < 48u << 20);

  // Meanwhile a second channel works.
  UniqueFd other = dialer.dial(ForwardProto::tcp, l.port);
  UniqueFd server2 = l.accept();
  write_all(other.get(), "still moving");
  ::shutdown(other.get(), SHUT_WR);
  CHECK(read_to_eof(server2.get()) == "still moving");

  // Guest -> host the same way round: our side does not read.
  size_t back = fill_until_blocked(server.get());
  INFO("bytes the guest side wrote before blocking: " << back);
  CHECK(back > 0);
  CHECK(back < 48u << 20);

  // Every byte still arrives once the readers read.
  std::thread drain_guest([&] {
    std::string got = read_to_eof(server.get());
    CHECK(got.size() == taken);
  });
  std::this_thread::sleep_for(100ms);
  std::string got(back, '\0');
  size_t have = 0;
  while (have < back) {
    ssize_t n = ::read(stalled.get(), got.data() + have, back - have);
    REQUIRE(n > 0);
    have += static_cast<size_t>(n);
  }
  CHECK(got == std::string(back, 'x'));
  ::shutdown(stalled.get(), SHUT_WR);
  drain_guest.join();
}

TEST_CASE("agent dialer: closing the descriptor closes the channel", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener l;
  UniqueFd fd = dialer.dial(ForwardProto::tcp, l.port);
  UniqueFd server = l.accept();
  write_all(fd.get(), "bye");
  fd.reset();
  CHECK(read_to_eof(server.get()) == "bye");  // the data first, then EOF
  server.reset();
  CHECK(test::eventually([&] { return dialer.open_channels() == 0; }));
}

TEST_CASE("agent dialer: a dropped session fails its channels, the next dial makes a new one", "[agent][forward]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentDialer dialer(agent.endpoint());
  Listener l;
  UniqueFd fd = dialer.dial(ForwardProto::tcp, l.port);
  UniqueFd server = l.accept();
  agent.stop();  // the agent (and its session) dies
  CHECK(read_to_eof(fd.get()).empty());  // the channel ends
  agent.start();
  UniqueFd again;
  CHECK(test::eventually([&] {
    try {
      again = dialer.dial(ForwardProto::tcp, l.port);
      return true;
    } catch (const Error&) {
      return false;
    }
  }));
  CHECK(dialer.sessions() == 2);
  UniqueFd server2 = l.accept();
  write_all(again.get(), "new session");
  ::shutdown(again.get(), SHUT_WR);
  CHECK(read_to_eof(server2.get()) == "new session");
}

TEST_CASE("agent dialer: a VM without a forwarding port says to restart it", "[agent][forward]") {
  test::TempDir t;
  guest::Endpoint agent_ep{guest::Endpoint::Kind::unix_socket, t / "agent.sock", 0, 52};
  guest::Endpoint ep = guest::forward_endpoint(agent_ep);
  CHECK(ep.path == t / "forward.sock");
  guest::Endpoint vsock{guest::Endpoint::Kind::vsock_uds, t / "fc.vsock", 0, 52};
  CHECK(guest::forward_endpoint(vsock).path == vsock.path);  // firecracker: port 52, a session per connection
  CHECK(guest::forward_endpoint(vsock).port == 52);
  guest::AgentDialer dialer(ep, 2s);
  try {
    dialer.dial(ForwardProto::tcp, 8000);
    FAIL("dial without a forwarding port succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOENT");
    CHECK_THAT(e.what(), Catch::Contains("restart the VM"));
  }
}

TEST_CASE("agent dialer: connect() before any client names a forwarding port nobody serves", "[agent][forward]") {
  // What QEMU's forward.sock is in a guest whose agent predates the
  // forwarding port: a listening socket that never answers hello.
  test::TempDir t;
  std::string path = t / "forward.sock";
  UniqueFd lfd = net_unix::bind(path);
  REQUIRE(::listen(lfd.get(), 1) == 0);
  guest::AgentDialer dialer({guest::Endpoint::Kind::unix_socket, path, 0, 52}, 1s);
  try {
    dialer.connect();
    FAIL("connect to a silent forwarding port succeeded");
  } catch (const Error& e) {
    CHECK(e.code() == "ETIMEDOUT");
    CHECK_THAT(e.what(), Catch::Contains("the image needs a newer banger-agent"));
  }
}

TEST_CASE("agent dialer: an agent without connect is ENOTSUP at once", "[agent][forward]") {
  // A peer that greets like an agent of protocol 1.1 (no "connect").
  test::TempDir t;
  std::string path = t / "old.sock";
  UniqueFd lfd = net_unix::bind(path);
  REQUIRE(::listen(lfd.get(), 1) == 0);
  std::thread old_agent([&] {
    UniqueFd c(::accept(lfd.get(), nullptr, nullptr));
    guest::FrameReader r;
    char buf[4096];
    while (true) {
      ssize_t n = ::read(c.get(), buf, sizeof buf);
      if (n <= 0) return;
      r.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (auto f = r.next(); f && f->type == FrameType::hello) {
        net_unix::write_all(c.get(),
                            guest::encode_json(FrameType::hello_ok, 0,
                                               {{"proto", 1}, {"minor", 1}, {"agent_version", "0.0.9"},
                                                {"session", f->json().value("session", "")},
                                                {"capabilities", {"exec", "get", "put"}}}),
                            "test");
        read_to_eof(c.get());
        return;
      }
    }
  });
  {
    guest::AgentDialer dialer({guest::Endpoint::Kind::unix_socket, path, 0, 52}, 5s);
    CHECK(test::error_code_of([&] { dialer.dial(ForwardProto::tcp, 80); }) == "ENOTSUP");
  }
  old_agent.join();
}

TEST_CASE("agent connect channels: the agent's limits", "[agent][forward][attack]") {
  test::TempDir t;
  RunningAgent agent(t);
  Listener l;

  SECTION("a host that ignores the window loses the channel, not the agent") {
    guest::AgentStream s = guest::AgentClient::open_stream(agent.endpoint(), 10s);
    net_unix::write_all(s.fd.get(), guest::encode_json(FrameType::connect, 5, {{"proto", "tcp"}, {"port", l.port}}),
                        "agent");
    CHECK(next_on(s, 5).type == FrameType::ok);
    UniqueFd server = l.accept();  // never reads: the agent must queue what the host sends
    std::string chunk(guest::kDataChunk, 'z');
    std::atomic<bool> stop{false};
    std::thread flood([&] {
      // Far past window + socket buffers, never waiting for a grant.
      for (int i = 0; i < 1024 && !stop; ++i) {
        try {
          net_unix::write_all(s.fd.get(), guest::encode(FrameType::data, 5, chunk), "agent");
        } catch (const Error&) {
          return;
        }
      }
    });
    guest::Frame f = next_on(s, 5, 60s);
    stop = true;
    flood.join();
    CHECK(error_code(f) == "EOVERFLOW");
    // The session still serves.
    net_unix::write_all(s.fd.get(), guest::encode(FrameType::ping, 6, "p"), "agent");
    CHECK(next_on(s, 6).type == FrameType::pong);
  }
  SECTION("at most kMaxChannels channels per session") {
    guest::AgentDialer dialer(agent.endpoint());
    std::vector<UniqueFd> open, served;
    for (size_t i = 0; i < guest::kMaxChannels; ++i) {
      open.push_back(dialer.dial(ForwardProto::tcp, l.port));
      served.push_back(l.accept());  // dials answer in order: this is that channel's far end
    }
    CHECK(test::error_code_of([&] { dialer.dial(ForwardProto::tcp, l.port); }) == "EMFILE");
    // A channel ends when both ends closed (a guest server that ignores
    // EOF would keep it, as it keeps a TCP connection), and frees its slot.
    open.pop_back();
    served.pop_back();
    CHECK(test::eventually([&] {
      try {
        open.push_back(dialer.dial(ForwardProto::tcp, l.port));
        return true;
      } catch (const Error&) {
        return false;
      }
    }));
  }
  SECTION("a bad request, a reused channel and a channel to nothing") {
    guest::AgentStream s = guest::AgentClient::open_stream(agent.endpoint(), 10s);
    auto send = [&](FrameType ty, std::uint32_t ch, const nlohmann::json& j) {
      net_unix::write_all(s.fd.get(), guest::encode_json(ty, ch, j), "agent");
    };
    send(FrameType::connect, 1, {{"proto", "tcp"}, {"port", 70000}});
    CHECK(error_code(next_on(s, 1)) == "EINVAL");
    send(FrameType::connect, 2, {{"proto", "tcp"}, {"port", l.port}});
    CHECK(next_on(s, 2).type == FrameType::ok);
    send(FrameType::connect, 2, {{"proto", "tcp"}, {"port", l.port}});
    CHECK(error_code(next_on(s, 2)) == "EBUSY");
    // Data for a channel that does not exist is ignored; the session goes on.
    net_unix::write_all(s.fd.get(), guest::encode(FrameType::data, 99, "stray"), "agent");
    send(FrameType::window, 2, {{"bytes", -5}});
    CHECK(error_code(next_on(s, 2)) == "EPROTO");
    net_unix::write_all(s.fd.get(), guest::encode(FrameType::ping, 3, "p"), "agent");
    CHECK(next_on(s, 3).type == FrameType::pong);
  }
}
