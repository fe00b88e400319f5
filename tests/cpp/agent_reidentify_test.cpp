// reidentify and mount (docs/agent-protocol.md): their wire form and
// validation, the real agent refusing to act on a host, the client's
// capability check, and the guest NIC re-addressing against a real kernel
// in a network namespace of the test's own. The requests succeeding inside
// a guest is tested under QEMU by tests/lua/e2e_reidentify_spec.lua.
#include <catch2/catch.hpp>

#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "cli/banger-agent/guest_net.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/guest/agent_client.hpp"
#include "engine/guest/protocol.hpp"
#include "engine/guest/requests.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace std::chrono_literals;
using guest::FrameType;

namespace {

const std::string kAgent = std::string(BANGER_TEST_BINARY_DIR) + "/cli/banger-agent/banger-agent";

guest::ReidentifyRequest valid_request() {
  guest::ReidentifyRequest r;
  r.generation = "5f0c1c6e-8d0b-4f4e-9a51-0d7f4b2c9e11";
  r.hostname = "fork-1";
  r.machine_id = "0123456789abcdef0123456789abcdef";
  r.time_ns = 1764000000123456789;
  r.entropy = std::string(48, '\0') + std::string("\xff\x01\x80 random", 10);
  r.net = guest::NetConfig{"eth0", "02:aa:bb:cc:dd:ee", "172.30.0.7", 24, "172.30.0.1"};
  r.dns = std::vector<std::string>{"172.30.0.1", "2001:db8::53"};
  r.ssh_host_keys = true;
  return r;
}

// Through a frame and back, as the agent receives it.
template <class Request, class Parse>
Request over_the_wire(const Request& r, FrameType type, Parse parse) {
  guest::FrameReader reader;
  reader.feed(guest::encode_json(type, 9, guest::to_json(r)));
  auto f = reader.next();
  REQUIRE(f);
  CHECK(f->type == type);
  return parse(f->json());
}

std::string invalid_message(const nlohmann::json& j, bool mount = false) {
  try {
    if (mount) guest::parse_mount(j);
    else guest::parse_reidentify(j);
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    return e.what();
  }
  FAIL("accepted " << j.dump());
  return "";
}

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

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

process::RunResult sh(const std::string& script) {
  return process::run({{"sh", "-c", script}, {}, {}, {}, false, {}, {}, {}}, {}, 30s);
}

}  // namespace

TEST_CASE("reidentify and mount requests survive the wire unchanged", "[agent][protocol]") {
  guest::ReidentifyRequest full = valid_request();
  CHECK(over_the_wire(full, FrameType::reidentify, guest::parse_reidentify) == full);
  // The entropy is raw bytes (NULs and high bytes included); JSON carries it as hex.
  CHECK(guest::to_json(full)["entropy"].get<std::string>().size() == full.entropy.size() * 2);

  guest::ReidentifyRequest bare = valid_request();
  bare.net.reset();
  bare.dns.reset();
  bare.ssh_host_keys = false;
  CHECK(over_the_wire(bare, FrameType::reidentify, guest::parse_reidentify) == bare);
  CHECK_FALSE(guest::to_json(bare).contains("net"));

  guest::ReidentifyRequest no_gateway = valid_request();
  no_gateway.net->gateway.clear();
  CHECK(over_the_wire(no_gateway, FrameType::reidentify, guest::parse_reidentify) == no_gateway);

  guest::MountRequest m{"banger-ws", "/root/repo", "ext4", 10000};
  CHECK(over_the_wire(m, FrameType::mount, guest::parse_mount) == m);
  // Defaults for what a host leaves out; unknown fields (a newer host) are ignored.
  guest::MountRequest d = guest::parse_mount({{"serial", "s"}, {"target", "/mnt/x"}, {"from_the_future", 1}});
  CHECK(d.fstype == "ext4");
  CHECK(d.timeout_ms == 10000);
  nlohmann::json j = guest::to_json(bare);
  j.erase("ssh_host_keys");
  CHECK(guest::parse_reidentify(j).ssh_host_keys);
}

TEST_CASE("malformed reidentify and mount requests are refused, naming the field", "[agent][protocol][attack]") {
  auto with = [](const char* key, nlohmann::json v) {
    nlohmann::json j = guest::to_json(valid_request());
    if (v.is_null()) j.erase(key);
    else j[key] = v;
    return j;
  };
  auto net_with = [](const char* key, nlohmann::json v) {
    nlohmann::json j = guest::to_json(valid_request());
    if (v.is_null()) j["net"].erase(key);
    else j["net"][key] = v;
    return j;
  };
  CHECK_THAT(invalid_message(nlohmann::json::array()), Catch::Contains("must be an object"));
  CHECK_THAT(invalid_message(with("generation", nullptr)), Catch::Contains("generation is missing"));
  CHECK_THAT(invalid_message(with("generation", "a b")), Catch::Contains("generation"));
  CHECK_THAT(invalid_message(with("generation", 7)), Catch::Contains("generation must be a string"));
  CHECK_THAT(invalid_message(with("hostname", "-lead")), Catch::Contains("hostname"));
  CHECK_THAT(invalid_message(with("hostname", "a..b")), Catch::Contains("hostname"));
  CHECK_THAT(invalid_message(with("hostname", "x;reboot")), Catch::Contains("hostname"));
  CHECK_THAT(invalid_message(with("hostname", std::string(65, 'a'))), Catch::Contains("hostname"));
  CHECK_THAT(invalid_message(with("machine_id", "0123456789ABCDEF0123456789ABCDEF")), Catch::Contains("machine_id"));
  CHECK_THAT(invalid_message(with("machine_id", std::string(31, 'a'))), Catch::Contains("machine_id"));
  CHECK_THAT(invalid_message(with("machine_id", std::string(32, '0'))), Catch::Contains("all zeros"));
  CHECK_THAT(invalid_message(with("time_ns", nullptr)), Catch::Contains("time_ns is missing"));
  CHECK_THAT(invalid_message(with("time_ns", -1)), Catch::Contains("time_ns"));
  CHECK_THAT(invalid_message(with("time_ns", 1.5)), Catch::Contains("time_ns must be an integer"));
  CHECK_THAT(invalid_message(with("entropy", std::string(62, 'a'))), Catch::Contains("entropy must be 32 to 4096 bytes, got 31"));
  CHECK_THAT(invalid_message(with("entropy", std::string(64, 'g'))), Catch::Contains("hex"));
  CHECK_THAT(invalid_message(with("entropy", std::string(8194, 'a'))), Catch::Contains("got 4097"));
  CHECK_THAT(invalid_message(with("net", "eth0")), Catch::Contains("net must be an object"));
  CHECK_THAT(invalid_message(net_with("mac", nullptr)), Catch::Contains("mac is missing"));
  CHECK_THAT(invalid_message(net_with("mac", "02:aa:bb:cc:dd")), Catch::Contains("mac"));
  CHECK_THAT(invalid_message(net_with("mac", "03:aa:bb:cc:dd:ee")), Catch::Contains("multicast"));
  CHECK_THAT(invalid_message(net_with("address", "172.30.0.300")), Catch::Contains("address"));
  CHECK_THAT(invalid_message(net_with("address", "fe80::1")), Catch::Contains("not an IPv4 address"));
  CHECK_THAT(invalid_message(net_with("prefix", 33)), Catch::Contains("prefix"));
  CHECK_THAT(invalid_message(net_with("prefix", nullptr)), Catch::Contains("prefix is missing"));
  CHECK_THAT(invalid_message(net_with("gateway", "gw")), Catch::Contains("gateway"));
  CHECK_THAT(invalid_message(net_with("dev", "eth0/../lo")), Catch::Contains("dev"));
  CHECK_THAT(invalid_message(net_with("dev", "a-very-long-interface")), Catch::Contains("dev"));
  CHECK_THAT(invalid_message(with("dns", nlohmann::json::array())), Catch::Contains("dns"));
  CHECK_THAT(invalid_message(with("dns", {"1.1.1.1", "resolver.example"})), Catch::Contains("not an IP address"));
  CHECK_THAT(invalid_message(with("dns", "1.1.1.1")), Catch::Contains("dns"));
  CHECK_THAT(invalid_message(with("ssh_host_keys", "yes")), Catch::Contains("ssh_host_keys must be a boolean"));

  nlohmann::json m = guest::to_json(guest::MountRequest{"banger-ws", "/root/repo", "ext4", 1000});
  auto mount_with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = m;
    if (v.is_null()) j.erase(key);
    else j[key] = v;
    return invalid_message(j, true);
  };
  CHECK_THAT(mount_with("serial", nullptr), Catch::Contains("serial is missing"));
  CHECK_THAT(mount_with("serial", "x,drive=evil"), Catch::Contains("serial"));
  CHECK_THAT(mount_with("serial", std::string(21, 's')), Catch::Contains("serial must be 1 to 20"));
  CHECK_THAT(mount_with("target", "root/repo"), Catch::Contains("absolute"));
  CHECK_THAT(mount_with("target", "/"), Catch::Contains("absolute path other than /"));
  CHECK_THAT(mount_with("target", "/root/../etc"), Catch::Contains(".."));
  CHECK_THAT(mount_with("target", "/root/.."), Catch::Contains(".."));
  CHECK_THAT(mount_with("fstype", "ext4,errors=panic"), Catch::Contains("fstype"));
  CHECK_THAT(mount_with("timeout_ms", -1), Catch::Contains("timeout_ms"));
  CHECK_THAT(mount_with("timeout_ms", 3600000), Catch::Contains("timeout_ms"));
}

TEST_CASE("an agent on a host validates reidentify, then refuses to apply it", "[agent][attack]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  CHECK(c->hello()["minor"] == guest::kProtocolMinor);
  const std::string before = hostname();
  struct stat st {};
  const bool state_dir_before = ::stat("/run/banger-agent", &st) == 0;

  // A malformed request is reported as such, wherever the agent runs.
  guest::ReidentifyRequest bad = valid_request();
  bad.machine_id = "not-hex";
  try {
    c->reidentify(bad);
    FAIL("a malformed reidentify was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    CHECK_THAT(e.what(), Catch::Contains("machine_id"));
  }
  // A valid one is refused: this machine's kernel command line has no banger.name=.
  guest::ReidentifyRequest r = valid_request();
  r.time_ns = 0;       // the client fills in its clock
  r.entropy.clear();   // and entropy of its own
  try {
    c->reidentify(r);
    FAIL("an agent on a host must refuse to reidentify it");
  } catch (const Error& e) {
    CHECK(e.code() == "EPERM");
    CHECK_THAT(e.what(), Catch::Contains("not a banger guest"));
  }
  CHECK(hostname() == before);
  CHECK((::stat("/run/banger-agent", &st) == 0) == state_dir_before);
  c->ping();  // the session goes on
}

TEST_CASE("mount waits for the disk's serial, then names what never appeared", "[agent]") {
  test::TempDir t;
  RunningAgent agent(t);
  auto c = guest::AgentClient::wait_ready(agent.endpoint(), 10s);
  auto start = std::chrono::steady_clock::now();
  try {
    c->mount({"banger-nosuch", t / "mnt/repo", "ext4", 400});
    FAIL("a disk that does not exist was mounted");
  } catch (const Error& e) {
    CHECK(e.code() == "ENODEV");
    CHECK_THAT(e.what(), Catch::Contains("no virtio disk with serial 'banger-nosuch' appeared within 400 ms"));
  }
  CHECK(std::chrono::steady_clock::now() - start >= 400ms);
  struct stat st {};
  CHECK(::stat((t / "mnt").c_str(), &st) != 0);  // nothing made for a disk that never came
  try {
    c->mount({"banger-ws", "relative/dir", "ext4", 100});
    FAIL("a relative mount target was accepted");
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    CHECK_THAT(e.what(), Catch::Contains("absolute"));
  }
}

TEST_CASE("the client refuses reidentify and mount to an agent that cannot do them", "[agent]") {
  // A protocol 1.0 agent: its hello lists no such capability, and it would
  // skip the unknown frame without answering.
  test::TempDir t;
  std::string path = t / "old.sock";
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(lfd, 1) == 0);
  std::string received;
  std::thread old_agent([&] {
    int fd = ::accept(lfd, nullptr, nullptr);
    guest::FrameReader reader;
    char buf[4096];
    bool answered = false;
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      reader.feed(std::string_view(buf, static_cast<size_t>(n)));
      while (auto f = reader.next()) {
        if (f->type == FrameType::hello && !answered) {
          std::string hello = guest::encode_json(
              FrameType::hello_ok, 0,
              {{"proto", 1}, {"minor", 0}, {"agent_version", "0.0.9"}, {"session", f->json()["session"]},
               {"capabilities", {"exec", "signal", "put", "get", "poweroff"}}});
          if (::write(fd, hello.data(), hello.size()) < 0) break;
          answered = true;
        } else if (f->type != FrameType::hello) {
          received += std::to_string(static_cast<int>(f->type)) + " ";
        }
      }
    }
    ::close(fd);
  });
  {
    auto c = guest::AgentClient::connect({guest::Endpoint::Kind::unix_socket, path, 0, 52}, 5s);
    CHECK(test::error_code_of([&] { c->reidentify(valid_request()); }) == "ENOTSUP");
    CHECK(test::error_code_of([&] { c->mount({"banger-ws", "/root/repo", "ext4", 100}); }) == "ENOTSUP");
    CHECK(test::error_code_of([&] { c->listeners(); }) == "ENOTSUP");
  }
  old_agent.join();
  ::close(lfd);
  CHECK(received.empty());  // nothing was sent that it would have ignored
}

TEST_CASE("readdress gives a NIC a new MAC, address and default route, dropping the old state",
          "[agent][net]") {
  // A network namespace of this thread's own, with a veth pair standing in for
  // the guest's NIC and the host's end of it; `ip` only sets up and inspects.
  std::string failure, link, addrs, neigh_before, neigh_after, routes;
  std::thread inside([&] {
    try {
      if (::unshare(CLONE_NEWNET) != 0) throw Error::last("unshare(CLONE_NEWNET)");
      auto setup = sh(
          "set -e; ip link add eth9 type veth peer name host9; ip link set host9 up; ip link set eth9 up;"
          "ip addr add 10.9.0.2/24 dev eth9; ip addr add 10.9.0.3/24 dev eth9; ip addr add 10.6.0.2/16 dev eth9;"
          "ip route add default via 10.9.0.1 dev eth9; ip route add 10.8.0.0/16 via 10.9.0.1 dev eth9;"
          "ip neigh replace 10.9.0.1 lladdr 02:00:00:00:09:01 dev eth9 nud stale");
      if (setup.status.shell_code() != 0) throw Error("EIO", "setup: " + setup.err);
      neigh_before = sh("ip neigh show dev eth9").out;
      agent::readdress({"eth9", "02:11:22:33:44:55", "10.7.0.5", 24, "10.7.0.1"});
      link = sh("ip -o link show dev eth9").out;
      addrs = sh("ip -4 -o addr show dev eth9").out;
      neigh_after = sh("ip neigh show dev eth9").out;
      routes = sh("ip -4 route show").out;
      // A NIC that is not there is named.
      try {
        agent::readdress({"eth8", "02:11:22:33:44:56", "10.7.0.6", 24, ""});
        failure = "readdress of a missing NIC succeeded";
      } catch (const Error& e) {
        if (e.code() != "ENODEV" || std::string(e.what()).find("eth8") == std::string::npos) failure = e.what();
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  inside.join();
  INFO(link << addrs << neigh_after << routes);
  REQUIRE(failure.empty());
  CHECK_THAT(neigh_before, Catch::Contains("10.9.0.1"));
  CHECK_THAT(link, Catch::Contains("link/ether 02:11:22:33:44:55"));
  CHECK_THAT(link, Catch::Contains(",UP"));
  CHECK_THAT(addrs, Catch::Contains("inet 10.7.0.5/24"));
  CHECK_THAT(addrs, !Catch::Contains("10.9.0.") && !Catch::Contains("10.6.0."));
  CHECK_THAT(neigh_after, !Catch::Contains("10.9.0.1"));
  CHECK_THAT(routes, Catch::Contains("default via 10.7.0.1 dev eth9"));
  CHECK_THAT(routes, Catch::Contains("10.7.0.0/24 dev eth9"));
  CHECK_THAT(routes, !Catch::Contains("10.8.0.0") && !Catch::Contains("10.9.0.") && !Catch::Contains("10.6.0."));
}
