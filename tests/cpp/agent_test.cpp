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

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
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

namespace {

std::map<std::string, guest::FileEntry> by_name(const guest::ListResult& r) {
  std::map<std::string, guest::FileEntry> m;
  for (const auto& e : r.entries) m[e.name] = e;
  return m;
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

bool exists_nofollow(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("the agent offers list and remove (protocol 1.3)", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  CHECK(c->hello()["minor"] == 3);
  std::vector<std::string> caps = c->hello()["capabilities"];
  CHECK(std::find(caps.begin(), caps.end(), "list") != caps.end());
  CHECK(std::find(caps.begin(), caps.end(), "remove") != caps.end());
}

TEST_CASE("list reports entries by lstat and never follows a link", "[agent][attack]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  const std::string d = t / "d";
  REQUIRE(::mkdir(d.c_str(), 0755) == 0);
  write_file(d + "/f", "12345");
  REQUIRE(::chmod((d + "/f").c_str(), 0640) == 0);
  REQUIRE(::mkdir((d + "/sub").c_str(), 0700) == 0);
  const std::string secret = t / "secret";
  REQUIRE(::mkdir(secret.c_str(), 0700) == 0);
  write_file(secret + "/key", std::string(4096, 'k'));
  REQUIRE(::symlink(secret.c_str(), (d + "/link").c_str()) == 0);
  REQUIRE(::mkfifo((d + "/fifo").c_str(), 0600) == 0);

  guest::ListResult r = c->list(d);
  CHECK(r.dir);
  CHECK_FALSE(r.truncated);
  auto m = by_name(r);
  REQUIRE(m.size() == 4);
  CHECK(m["f"].type == "file");
  CHECK(m["f"].size == 5);
  CHECK(m["f"].mode == 0640);
  CHECK(m["f"].mtime > 1600000000);
  CHECK(m["sub"].type == "dir");
  CHECK(m["sub"].mode == 0700);
  CHECK(m["link"].type == "link");  // lstat: the link itself, not the directory it points at
  CHECK(m["link"].size == secret.size());
  CHECK(m["fifo"].type == "other");

  // A link named as the path is the one entry of itself: its target is not listed.
  guest::ListResult via_link = c->list(d + "/link");
  CHECK_FALSE(via_link.dir);
  REQUIRE(via_link.entries.size() == 1);
  CHECK(via_link.entries[0].name == "link");
  CHECK(via_link.entries[0].type == "link");

  guest::ListResult one = c->list(d + "/f");
  CHECK_FALSE(one.dir);
  REQUIRE(one.entries.size() == 1);
  CHECK(one.entries[0].name == "f");
  CHECK(one.entries[0].size == 5);

  try {
    c->list(t / "missing");
    FAIL("expected ENOENT");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOENT");
  }
  try {
    c->list("relative/path");
    FAIL("expected EINVAL");
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
  }
}

TEST_CASE("a huge directory listing is cut, and says so", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  const std::string d = t / "many";
  REQUIRE(::mkdir(d.c_str(), 0755) == 0);
  for (size_t i = 0; i < guest::kMaxListEntries + 5; ++i) {
    int fd = ::open((d + "/" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
  }
  guest::ListResult r = c->list(d);
  CHECK(r.truncated);
  CHECK(r.entries.size() == guest::kMaxListEntries);
}

TEST_CASE("remove deletes files, links and trees without following links", "[agent][attack]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  // Outside the tree: what links inside it point at, which must survive.
  const std::string outside = t / "outside";
  REQUIRE(::mkdir(outside.c_str(), 0755) == 0);
  write_file(outside + "/precious", "keep me");

  const std::string tree = t / "tree";
  REQUIRE(::mkdir(tree.c_str(), 0755) == 0);
  REQUIRE(::mkdir((tree + "/a").c_str(), 0755) == 0);
  REQUIRE(::mkdir((tree + "/a/b").c_str(), 0755) == 0);
  write_file(tree + "/a/b/file", "x");
  REQUIRE(::symlink(outside.c_str(), (tree + "/a/dirlink").c_str()) == 0);
  REQUIRE(::symlink((outside + "/precious").c_str(), (tree + "/filelink").c_str()) == 0);

  SECTION("a link to a directory removes the link, not what it points at") {
    c->remove(tree + "/a/dirlink", false);
    CHECK_FALSE(exists_nofollow(tree + "/a/dirlink"));
    CHECK(exists_nofollow(outside + "/precious"));
    c->remove(tree + "/filelink", true);  // recursive on a link: still only the link
    CHECK_FALSE(exists_nofollow(tree + "/filelink"));
    CHECK(exists_nofollow(outside + "/precious"));
  }
  SECTION("a recursive remove does not cross into linked directories") {
    c->remove(tree, true);
    CHECK_FALSE(exists_nofollow(tree));
    CHECK(exists_nofollow(outside + "/precious"));
  }
  SECTION("a trailing slash on a link does not make the remove follow it") {
    c->remove(tree + "/a/dirlink/", true);
    CHECK_FALSE(exists_nofollow(tree + "/a/dirlink"));
    CHECK(exists_nofollow(outside + "/precious"));
  }
  SECTION("a non-empty directory needs recursive") {
    try {
      c->remove(tree + "/a", false);
      FAIL("expected ENOTEMPTY");
    } catch (const Error& e) {
      CHECK(e.code() == "ENOTEMPTY");
    }
    CHECK(exists_nofollow(tree + "/a/b/file"));
    c->remove(tree + "/a/b/file", false);
    CHECK_FALSE(exists_nofollow(tree + "/a/b/file"));
    c->remove(tree + "/a/b", false);  // empty now
    CHECK_FALSE(exists_nofollow(tree + "/a/b"));
  }
  SECTION("/ and paths ending in . or .. are refused") {
    for (const char* p : {"/", "//", "/."}) {
      try {
        c->remove(p, true);
        FAIL(std::string("removing ") + p + " must be refused");
      } catch (const Error& e) {
        CHECK((e.code() == "EPERM" || e.code() == "EINVAL"));
      }
    }
    try {
      c->remove(tree + "/a/..", true);
      FAIL("expected EINVAL");
    } catch (const Error& e) {
      CHECK(e.code() == "EINVAL");
    }
    CHECK(exists_nofollow(tree + "/a/b/file"));
  }
  SECTION("a missing path is ENOENT") {
    try {
      c->remove(tree + "/nope", false);
      FAIL("expected ENOENT");
    } catch (const Error& e) {
      CHECK(e.code() == "ENOENT");
    }
  }
}

TEST_CASE("exec with a timeout kills the command and says so", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  std::string out;
  guest::ExecRequest req{{"sh", "-c", "echo started; exec sleep 100"}, {}, {}, {}, 500ms};
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->exec(req, [&](std::string_view s) { out.append(s); }, nullptr);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.timed_out);
  CHECK(r.signal == SIGKILL);
  CHECK(r.code == 128 + SIGKILL);
  CHECK(out == "started\n");
  CHECK(took >= 500ms);
  CHECK(took < 30s);
  // The session is free again for the next command.
  auto again = c->exec({{"true"}, {}, {}, {}, 5000ms}, nullptr, nullptr);
  CHECK_FALSE(again.timed_out);
  CHECK(again.code == 0);
}

TEST_CASE("a streamed put whose source fails leaves the target as it was", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  const std::string path = t / "target";
  write_file(path, "old");
  int calls = 0;
  CHECK_THROWS_AS(c->put(
                      path,
                      [&]() -> std::optional<std::string> {
                        if (++calls > 3) throw Error("EIO", "source broke");
                        return std::string(100000, 'n');
                      },
                      0644, 0, 0),
                  Error);
  CHECK(c->get(path) == "old");
  // and streams that end normally arrive whole
  int n = 0;
  auto bytes = c->put(
      path, [&]() -> std::optional<std::string> { return ++n <= 40 ? std::optional(std::string(65537, 'a' + n % 26)) : std::nullopt; },
      0600, 0, 0);
  CHECK(bytes == 40u * 65537u);
  std::string got;
  c->get(path, [&](std::string_view s) { got.append(s); });
  CHECK(got.size() == 40u * 65537u);
  CHECK(got.substr(65537, 3) == std::string(3, 'a' + 2 % 26));
  // no temporary file left beside it
  auto listing = c->list(t.path());
  for (const auto& e : listing.entries) CHECK(e.name.find(".banger-tmp-") == std::string::npos);
}

TEST_CASE("get with a limit ends even on an endless file, and a failing sink leaves the session usable",
          "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  size_t got = 0;
  c->get("/dev/zero", [&](std::string_view s) { got += s.size(); }, 300001);
  CHECK(got == 300001);

  const std::string path = t / "big";
  write_file(path, std::string(1 << 20, 'b'));
  int calls = 0;
  try {
    c->get(path, [&](std::string_view) {
      if (++calls == 2) throw Error("EFBIG", "too much");
    });
    FAIL("expected the sink's error");
  } catch (const Error& e) {
    CHECK(e.code() == "EFBIG");
  }
  CHECK(calls == 2);  // not called again after it failed
  // the rest of that answer was read: the next request gets its own answer
  write_file(t / "small", "after");
  CHECK(c->get(t / "small") == "after");
  auto r = c->exec({{"echo", "still serving"}, {}, {}, {}}, nullptr, nullptr);
  CHECK(r.code == 0);
}
