// The host side of vsock (CONNECT/OK) through fake-firecracker's vsock socket.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "engine/core/error.hpp"
#include "engine/vmm/firecracker_vsock.hpp"
#include "firecracker_fixture.hpp"

using namespace banger;
using namespace banger::vmm;
using namespace std::chrono_literals;

namespace {

void send_str(int fd, const std::string& s) { REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }

std::string recv_exact(int fd, size_t n) {
  std::string out;
  char buf[256];
  while (out.size() < n) {
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// A "guest" service: a Unix socket server answering "pong:<what it read>"
// to one connection.
struct GuestService {
  int fd = -1;
  std::thread t;
  explicit GuestService(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    t = std::thread([this] {
      int c = ::accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[64];
      ssize_t r = ::recv(c, buf, sizeof buf, 0);
      std::string reply = "pong:" + std::string(buf, r > 0 ? static_cast<size_t>(r) : 0);
      ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~GuestService() {
    ::shutdown(fd, SHUT_RDWR);
    t.join();
    ::close(fd);
  }
};

}  // namespace

TEST_CASE("vsock CONNECT/OK handshake through firecracker's socket", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  REQUIRE(h.agent.kind == AgentTransport::Kind::vsock_uds);

  SECTION("by hand, as the protocol is written") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, h.agent.path.c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    send_str(fd, "CONNECT 52\n");
    std::string ok;
    char c = 0;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') ok.push_back(c);
    CHECK_THAT(ok, Catch::Matches("OK [0-9]+"));
    send_str(fd, "echo me");
    CHECK(recv_exact(fd, 7) == "echo me");
    ::close(fd);
  }
  SECTION("with the engine's vsock_connect") {
    int fd = firecracker::vsock_connect(h.agent.path, h.agent.port);
    send_str(fd, "hello");
    CHECK(recv_exact(fd, 5) == "hello");
    ::close(fd);
  }
  SECTION("a garbled request gets the connection closed") {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, h.agent.path.c_str());
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    send_str(fd, "HELLO 52\n");
    char c;
    CHECK(::recv(fd, &c, 1, 0) == 0);
    ::close(fd);
  }
  CHECK(d->shutdown(h, 5s));
}

TEST_CASE("vsock connections reach the guest service behind the fake", "[firecracker]") {
  test::FcFixture fx;
  test::EnvVar backend("FAKE_FC_VSOCK_BACKEND", fx.tmp / "guest_{port}.sock");
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  {
    GuestService agent(fx.tmp / "guest_52.sock");
    int fd = firecracker::vsock_connect(h.agent.path, 52);
    send_str(fd, "ping");
    CHECK(recv_exact(fd, 9) == "pong:ping");
    ::close(fd);
  }
  // Nothing listens on port 1024 in the "guest": Firecracker closes the connection.
  try {
    ::close(firecracker::vsock_connect(h.agent.path, 1024, 2s));
    FAIL("connected to a port nobody listens on");
  } catch (const Error& e) {
    CHECK(e.code() == "ECONNRESET");
    CHECK_THAT(e.what(), Catch::Contains("nothing listens on that port"));
  }
  CHECK(d->shutdown(h, 5s));
  // Once firecracker is gone the socket refuses.
  CHECK_THROWS_WITH(firecracker::vsock_connect(h.agent.path, 52, 1s), Catch::Contains("connect"));
}

TEST_CASE("vsock does not accept while the guest is paused, and does after resume", "[firecracker]") {
  test::FcFixture fx;
  auto d = make_firecracker_driver();
  Handles h = d->launch(fx.spec, {});
  d->pause(h);
  CHECK_THROWS_WITH(firecracker::vsock_connect(h.agent.path, 52, 300ms), Catch::Contains("no answer"));
  d->resume(h);
  int fd = firecracker::vsock_connect(h.agent.path, 52);
  ::close(fd);
  CHECK(d->shutdown(h, 5s));
}
