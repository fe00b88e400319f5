// The agent protocol and the real banger-agent binary, talked to by the
// host client over the transports banger uses.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/guest/agent_client.hpp"
#include "engine/guest/protocol.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
using guest::FrameType;

namespace {

const std::string kAgent = std::string(BANGER_TEST_BINARY_DIR) + "/cli/banger-agent/banger-agent";

struct RunningAgent {
  process::Child child;
  std::string socket;
  explicit RunningAgent(const test::TempDir& t) : socket(t / "agent.sock") {
    child = process::spawn({{kAgent, "--unix", socket}, {}, {}, {}, false, {}, {}, {}});
  }
  ~RunningAgent() {
    child.kill(SIGKILL);
    child.wait(5s);
  }
  guest::Endpoint endpoint() const { return {guest::Endpoint::Kind::unix_socket, socket, 0, 52}; }
};

// Listens on `path` and bridges each connection to `target` after the
// firecracker vsock handshake ("CONNECT <port>\n" -> "OK <n>\n").
class FakeVsockMux {
 public:
  FakeVsockMux(std::string path, std::string target) : path_(std::move(path)), target_(std::move(target)) {
    lfd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    REQUIRE(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd_, 4) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeVsockMux() {
    ::shutdown(lfd_, SHUT_RDWR);
    ::close(lfd_);
    thread_.join();
  }
  std::string seen;

 private:
  void serve() {
    int c = ::accept(lfd_, nullptr, nullptr);
    if (c < 0) return;
    std::string line;
    char ch;
    while (::read(c, &ch, 1) == 1 && ch != '\n') line += ch;
    seen = line;
    int up = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, target_.c_str());
    if (line != "CONNECT 52" || ::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(up);
      ::close(c);
      return;
    }
    std::string ok = "OK 1073741824\n";
    if (::write(c, ok.data(), ok.size()) < 0) return;
    splice_both(c, up);
  }
  static void splice_both(int a, int b) {
    std::thread t([a, b] { pump(b, a); });
    pump(a, b);
    t.join();
    ::close(a);
    ::close(b);
  }
  static void pump(int from, int to) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0 || ::write(to, buf, static_cast<size_t>(n)) != n) break;
    }
    ::shutdown(to, SHUT_WR);
  }
  std::string path_, target_;
  int lfd_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("frames round-trip and survive garbage before them", "[agent][protocol]") {
  guest::FrameReader r;
  std::string stream = "line noise BGR\x01 junk" + guest::encode(FrameType::stdout_data, 7, std::string("a\0b", 3)) +
                       guest::encode_json(FrameType::exit, 7, {{"code", 3}});
  // Fed byte by byte, as a serial port may deliver it.
  std::vector<guest::Frame> frames;
  for (char c : stream) {
    r.feed(std::string_view(&c, 1));
    while (auto f = r.next()) frames.push_back(*f);
  }
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].type == FrameType::stdout_data);
  CHECK(frames[0].channel == 7);
  CHECK(frames[0].payload == std::string("a\0b", 3));
  CHECK(frames[1].json()["code"] == 3);
  CHECK(r.skipped() > 0);
}

TEST_CASE("malformed frames are skipped, never trusted", "[agent][protocol][attack]") {
  guest::FrameReader r;
  // A header claiming 4 GiB: skipped instead of waited for.
  std::string huge = std::string(guest::kMagic) + '\x0e' + std::string("\0\0\0\1", 4) + "\xff\xff\xff\xff";
  // An unknown type.
  std::string unknown = std::string(guest::kMagic) + '\x63' + std::string(8, '\0');
  r.feed(huge + unknown + guest::encode(FrameType::ping, 1, "p"));
  auto f = r.next();
  REQUIRE(f);
  CHECK(f->type == FrameType::ping);
  CHECK_FALSE(r.next());
  // A truncated frame waits for the rest.
  std::string full = guest::encode(FrameType::data, 2, std::string(1000, 'd'));
  r.feed(full.substr(0, 500));
  CHECK_FALSE(r.next());
  r.feed(full.substr(500));
  CHECK(r.next()->payload.size() == 1000);
  // A control payload that is not a JSON object.
  guest::Frame bad{FrameType::exec, 1, "[1,2"};
  CHECK_THROWS_AS(bad.json(), Error);
  CHECK_THROWS_AS(guest::encode(FrameType::data, 1, std::string(guest::kMaxPayload + 1, 'x')), Error);
}

TEST_CASE("the agent reports its version and runs commands", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  CHECK(c->hello()["proto"] == guest::kProtocolMajor);
  CHECK(c->hello()["agent_version"] == "0.1.0");

  std::string out, err;
  auto collect = [](std::string& s) { return [&s](std::string_view chunk) { s.append(chunk); }; };
  auto r = c->exec({{"uname", "-r"}, {}, {}, {}}, collect(out), collect(err));
  CHECK(r.code == 0);
  auto host = process::run({{"uname", "-r"}, {}, {}, {}, false, {}, {}, {}});
  CHECK(out == host.out);

  out.clear();
  r = c->exec({{"sh", "-c", "echo o; echo e >&2; exit 7"}, {}, {}, {}}, collect(out), collect(err));
  CHECK(r.code == 7);
  CHECK(out == "o\n");
  CHECK(err == "e\n");

  out.clear();
  r = c->exec({{"sh", "-c", "echo $GREETING; pwd"}, {"GREETING=hi"}, t.path(), {}}, collect(out), collect(err));
  CHECK(out == "hi\n" + t.path() + "\n");

  out.clear();
  r = c->exec({{"wc", "-c"}, {}, {}, std::string(300000, 's')}, collect(out), collect(err));
  CHECK(out == "300000\n");

  size_t total = 0;
  r = c->exec({{"head", "-c", "10485760", "/dev/zero"}, {}, {}, {}}, [&](std::string_view s) { total += s.size(); },
              collect(err));
  CHECK(total == 10485760);

  try {
    c->exec({{"/no/such/program"}, {}, {}, {}}, collect(out), collect(err));
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOENT");
  }
  c->ping();
  // Running on a host (no banger.* kernel arguments), the agent refuses to power it off.
  try {
    c->poweroff();
    FAIL("an agent on a host must refuse poweroff");
  } catch (const Error& e) {
    CHECK(e.code() == "EPERM");
  }
}

TEST_CASE("Ctrl-C reaches the guest command as SIGINT", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  test::CancelReset reset;
  // Ctrl-C once the guest command runs: it says so in a file first. A
  // jthread joins even when an assertion ends the case.
  const std::string ready = t / "running";
  std::jthread interrupter([&](std::stop_token stop) {
    while (!stop.stop_requested() && ::access(ready.c_str(), F_OK) != 0) std::this_thread::sleep_for(5ms);
    if (!stop.stop_requested()) cancel::request();
  });
  auto r = c->exec({{"sh", "-c", "echo > \"$1\" && exec sleep 100", "sh", ready}, {}, {}, {}}, nullptr, nullptr);
  interrupter.request_stop();
  interrupter.join();
  CHECK(r.interrupted);
  CHECK(r.signal == SIGINT);
  CHECK(r.code == 128 + SIGINT);
  CHECK(cancel::requested());  // the caller still sees the interrupt
}

TEST_CASE("put and get files with owner and mode, replaced atomically", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  std::string path = t / "put.txt";
  c->put(path, "first", 0600, 0, 0);
  c->put(path, std::string(200000, 'z'), 0640, 123, 456);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK(st.st_uid == 123);
  CHECK(st.st_gid == 456);
  CHECK(c->get(path) == std::string(200000, 'z'));
  CHECK_THROWS_AS(c->get(t / "missing"), Error);
  CHECK_THROWS_AS(c->put(t / "no/dir/file", "x", 0600, 0, 0), Error);
}

TEST_CASE("the firecracker vsock handshake reaches the agent", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  guest::AgentClient::wait_ready(agent.endpoint(), 10s);  // the agent is up
  FakeVsockMux mux(t / "v.sock", agent.socket);
  auto c = guest::AgentClient::connect({guest::Endpoint::Kind::vsock_uds, t / "v.sock", 0, 52}, 5s);
  CHECK(mux.seen == "CONNECT 52");
  std::string out;
  c->exec({{"echo", "through vsock"}, {}, {}, {}}, [&](std::string_view s) { out.append(s); }, nullptr);
  CHECK(out == "through vsock\n");
}

TEST_CASE("a serial-port agent serves host sessions one after another", "[agent]") {
  // A pty stands in for the virtio-serial port; a bridge thread plays QEMU's
  // chardev socket, which a new host connection reuses.
  int master = -1, slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  termios tio{};
  ::tcgetattr(slave, &tio);
  ::cfmakeraw(&tio);
  ::tcsetattr(slave, TCSANOW, &tio);
  std::string slave_path = ::ttyname(slave);
  test::TempDir t;
  process::Child agent = process::spawn({{kAgent, "--serial", slave_path}, {}, {}, {}, false, {}, {}, {}});

  std::string sock = t / "chardev.sock";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, sock.c_str());
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lfd, 1) == 0);
  std::atomic<bool> stop{false};
  std::thread bridge([&] {
    while (!stop) {
      int c = ::accept(lfd, nullptr, nullptr);
      if (c < 0) return;
      for (;;) {
        pollfd p[2] = {{c, POLLIN, 0}, {master, POLLIN, 0}};
        if (::poll(p, 2, 100) < 0) break;
        char buf[65536];
        if (p[0].revents) {
          ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;  // the host went away; the port stays
          if (::write(master, buf, static_cast<size_t>(n)) < 0) break;
        }
        if (p[1].revents & POLLIN) {
          ssize_t n = ::read(master, buf, sizeof buf);
          if (n > 0 && ::write(c, buf, static_cast<size_t>(n)) < 0) break;
        }
      }
      ::close(c);
    }
  });

  guest::Endpoint ep{guest::Endpoint::Kind::unix_socket, sock, 0, 52};
  // A torn frame, as a host that disconnected mid-write leaves on the port:
  // a hello header promising 100 bytes, with only 10 of them. It swallows the
  // start of the next host's hello; the host must still get through.
  std::string torn = guest::encode(FrameType::hello, 0, std::string(100, 'x')).substr(0, guest::kHeaderSize + 10);
  REQUIRE(::write(master, torn.data(), torn.size()) == static_cast<ssize_t>(torn.size()));
  for (int session = 0; session < 3; ++session) {
    auto c = guest::AgentClient::wait_ready(ep, 10s);
    std::string out;
    auto r = c->exec({{"echo", "session " + std::to_string(session)}, {}, {}, {}},
                     [&](std::string_view s) { out.append(s); }, nullptr);
    CHECK(r.code == 0);
    CHECK(out == "session " + std::to_string(session) + "\n");
    if (session == 1) {
      // Leave a command running: the next host's hello must end it.
      c->exec({{"true"}, {}, {}, {}}, nullptr, nullptr);
    }
  }
  stop = true;
  ::shutdown(lfd, SHUT_RDWR);
  ::close(lfd);
  bridge.join();
  agent.kill(SIGKILL);
  agent.wait(5s);
  ::close(master);
  ::close(slave);
}
