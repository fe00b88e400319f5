// The guest agent's reading of /proc/net (engine/guest/listeners.cpp) on
// text the host kernel wrote: sockets opened in a network namespace by a
// script (python3, listed in the comments) and the four files copied as
// they were. Then the agent's reader (cli/banger-agent/listeners.cpp) on a
// /proc tree made in a temporary directory, for the owners and the limits.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "cli/banger-agent/listeners.hpp"
#include "engine/core/error.hpp"
#include "engine/guest/listeners.hpp"
#include "engine/guest/protocol.hpp"
#include "test_util.hpp"

using namespace banger;
using guest::Listener;
using guest::ListenersResult;

namespace {

// tcp: listen 127.0.0.1:9000 and 0.0.0.0:8000, then a connection from
// 127.0.0.1 to :8000 (both ends ESTABLISHED; the accepted one has inode 0).
const char* kTcp =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     \n"
    "   0: 0100007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3505568 1 00000000f5539d46 100 0 0 10 0                   \n"
    "   1: 00000000:1F40 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 3505567 2 0000000045a6423f 100 0 0 10 0                   \n"
    "   2: 0100007F:DF30 0100007F:1F40 01 00000000:00000000 00:00000000 00000000     0        0 3505573 2 00000000dcdbae14 20 0 0 10 -1                   \n"
    "   3: 0100007F:1F40 0100007F:DF30 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000897d3073 20 0 0 10 -1                         \n";

// tcp6: listen [::]:8080 (dual stack), [::1]:6000, [fd00:1234::5]:6001 and
// the v4-mapped [::ffff:127.0.0.1]:7000.
const char* kTcp6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3505569 1 0000000028795403 100 0 0 10 0\n"
    "   1: 00000000000000000000000001000000:1770 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3505571 1 000000001b0de303 100 0 0 10 0\n"
    "   2: 341200FD000000000000000005000000:1771 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3505572 1 00000000de4a41dc 100 0 0 10 0\n"
    "   3: 0000000000000000FFFF00000100007F:1B58 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3505570 1 000000006ff5d20a 100 0 0 10 0\n";

// udp: bound 0.0.0.0:5353, and a socket connected to it (state 01).
const char* kUdp =
    "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            \n"
    " 5986: 0100007F:C01F 0100007F:14E9 01 00000000:00000000 00:00000000 00000000     0        0 3505575 2 00000000a4e67cd8 0       \n"
    "11308: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3505574 2 00000000665ede54 0       \n";

// udp6: bound [::1]:5300 and the v4-mapped [::ffff:10.1.2.3]:5301.
const char* kUdp6 =
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
    "11255: 00000000000000000000000001000000:14B4 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3505576 2 000000009195c1d8 0\n"
    "11256: 0000000000000000FFFF00000302010A:14B5 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3505577 2 00000000b878197f 0\n";

Listener L(const char* proto, const char* family, const char* address, std::uint16_t port, std::uint64_t inode) {
  return {proto, family, address, port, inode, std::nullopt, ""};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// One /proc/net/tcp line listening on 0.0.0.0:port.
std::string tcp_listen_line(int sl, int port, std::uint64_t inode) {
  char line[200];
  std::snprintf(line, sizeof line,
                "%4d: 00000000:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 %llu 1 "
                "0000000000000000 100 0 0 10 0                   \n",
                sl, port, static_cast<unsigned long long>(inode));
  return line;
}

}  // namespace

TEST_CASE("listening TCP sockets are read from /proc/net/tcp, other states are not", "[listeners]") {
  ListenersResult r;
  CHECK(guest::parse_proc_net(kTcp, "tcp", false, r) == 0);
  CHECK(r.listeners == std::vector<Listener>{L("tcp", "ipv4", "127.0.0.1", 9000, 3505568),
                                             L("tcp", "ipv4", "0.0.0.0", 8000, 3505567)});
  CHECK_FALSE(r.truncated);
}

TEST_CASE("tcp6 addresses decode word by word, v4-mapped ones included", "[listeners]") {
  ListenersResult r;
  CHECK(guest::parse_proc_net(kTcp6, "tcp", true, r) == 0);
  CHECK(r.listeners == std::vector<Listener>{L("tcp", "ipv6", "::", 8080, 3505569),
                                             L("tcp", "ipv6", "::1", 6000, 3505571),
                                             L("tcp", "ipv6", "fd00:1234::5", 6001, 3505572),
                                             L("tcp", "ipv6", "::ffff:127.0.0.1", 7000, 3505570)});
}

TEST_CASE("bound UDP sockets are listed, connected ones are not", "[listeners]") {
  ListenersResult r;
  CHECK(guest::parse_proc_net(kUdp, "udp", false, r) == 0);
  CHECK(guest::parse_proc_net(kUdp6, "udp", true, r) == 0);
  CHECK(r.listeners == std::vector<Listener>{L("udp", "ipv4", "0.0.0.0", 5353, 3505574),
                                             L("udp", "ipv6", "::1", 5300, 3505576),
                                             L("udp", "ipv6", "::ffff:10.1.2.3", 5301, 3505577)});
}

TEST_CASE("malformed /proc/net lines are counted and skipped, the rest still parsed", "[listeners][attack]") {
  std::string text = std::string(kTcp) +
                     "   4: 0100007F:2328\n"                                                           // cut short
                     "   5: 0100007G:2328 00000000:0000 0A 0:0 0:0 0 0 0 11 1\n"                      // not hex
                     "   6: 00000000000000000000000000000000:2328 00000000:0000 0A 0:0 0:0 0 0 0 12\n"  // IPv6 in tcp
                     "   7: 0100007F:12345 00000000:0000 0A 0:0 0:0 0 0 0 13\n"                      // port of 5 digits
                     "   8: 0100007F:2328 00000000:0000 0A 0:0 0:0 0 0 0 -14\n"                      // inode not a number
                     "   9: 0100007F-2328 00000000:0000 0A 0:0 0:0 0 0 0 15\n"                       // no port
                     "  10: 0100007F:2328 00000000:0000 100 0:0 0:0 0 0 0 16\n"                      // state of 3 digits
                     "garbage with enough fields to look like a line at all\n"
                     "\n"
                     "  11: 0100007F:0016 00000000:0000 0A 0:0 0:0 0 0 0 17";                        // no newline at the end
  ListenersResult r;
  CHECK(guest::parse_proc_net(text, "tcp", false, r) == 8);
  REQUIRE(r.listeners.size() == 3);
  CHECK(r.listeners[2] == L("tcp", "ipv4", "127.0.0.1", 22, 17));
  CHECK(guest::decode_proc_net_address("0100007F") == "127.0.0.1");
  CHECK_FALSE(guest::decode_proc_net_address("0100007"));
  CHECK_FALSE(guest::decode_proc_net_address(""));
  CHECK_FALSE(guest::decode_proc_net_address("0000000000000000FFFF00000100007X"));
}

TEST_CASE("no more than kMaxListeners are kept, and the answer says it was cut", "[listeners][attack]") {
  std::string text = "  sl  local_address rem_address   st\n";
  for (size_t i = 0; i < guest::kMaxListeners + 10; ++i) text += tcp_listen_line(static_cast<int>(i), 1000 + static_cast<int>(i), 100 + i);
  ListenersResult r;
  guest::parse_proc_net(text, "tcp", false, r);
  CHECK(r.listeners.size() == guest::kMaxListeners);
  CHECK(r.truncated);
  // the udp6 file read next adds nothing once the list is full
  guest::parse_proc_net(kUdp6, "udp", true, r);
  CHECK(r.listeners.size() == guest::kMaxListeners);
  // ...and the whole answer still fits in one frame
  CHECK(guest::to_json(r).dump().size() < guest::kMaxPayload);
}

TEST_CASE("the listeners answer round-trips, and a malformed one is refused", "[listeners]") {
  ListenersResult r;
  guest::parse_proc_net(kTcp, "tcp", false, r);
  r.listeners[0].pid = 42;
  r.listeners[0].comm = "httpd";
  CHECK(guest::parse_listeners(guest::to_json(r)) == r);
  auto refused = [](const char* text) {
    try {
      guest::parse_listeners(nlohmann::json::parse(text));
    } catch (const Error& e) {
      return e.code() == "EPROTO";
    }
    return false;
  };
  CHECK(refused(R"({})"));
  CHECK(refused(R"({"listeners": [1]})"));
  CHECK(refused(R"({"listeners": [{"proto":"tcp","family":"ipv4","address":"::","port":70000,"inode":1}]})"));
  CHECK(refused(R"({"listeners": [{"proto":"tcp","family":"ipv4","address":"::","port":80,"inode":-1}]})"));
  CHECK(refused(R"({"listeners": [{"proto":"tcp","family":"ipv4","address":"::","port":80,"inode":1,"pid":"1"}]})"));
  CHECK(refused(R"({"listeners": [{"proto":"tcp","family":"ipv4","address":"::","port":80,"inode":1,"pid":1,"comm":2}]})"));
  CHECK(refused(R"({"listeners": [{"proto":"tcp","address":"::","port":80,"inode":1}]})"));
}

TEST_CASE("the agent finds each socket's lowest pid and its comm in a /proc tree", "[listeners]") {
  test::TempDir proc;
  std::filesystem::create_directories(proc / "net");
  write_file(proc / "net/tcp", kTcp);
  write_file(proc / "net/udp", kUdp);
  write_file(proc / "net/udp6", kUdp6);  // no tcp6: a kernel without it has none to list
  for (const char* pid : {"7", "30", "31"}) {
    std::filesystem::create_directories(proc / (std::string(pid) + "/fd"));
  }
  write_file(proc / "7/comm", "sshd\n");
  write_file(proc / "30/comm", "httpd\n");
  write_file(proc / "31/comm", "httpd-worker\n");
  // 30 and its child 31 share the listening socket of :8000; 7 holds :5353
  REQUIRE(::symlink("socket:[3505567]", (proc / "30/fd/3").c_str()) == 0);
  REQUIRE(::symlink("socket:[3505567]", (proc / "31/fd/3").c_str()) == 0);
  REQUIRE(::symlink("socket:[3505574]", (proc / "7/fd/5").c_str()) == 0);
  REQUIRE(::symlink("/dev/null", (proc / "7/fd/0").c_str()) == 0);
  REQUIRE(::symlink("pipe:[3505567]", (proc / "7/fd/1").c_str()) == 0);  // same number, not a socket
  ListenersResult r = agent::list_listeners(proc.path());
  CHECK_FALSE(r.truncated);
  REQUIRE(r.listeners.size() == 5);
  CHECK(r.listeners[0] == L("tcp", "ipv4", "127.0.0.1", 9000, 3505568));  // nobody visible holds it
  Listener http = L("tcp", "ipv4", "0.0.0.0", 8000, 3505567);
  http.pid = 30;
  http.comm = "httpd";
  CHECK(r.listeners[1] == http);
  Listener mdns = L("udp", "ipv4", "0.0.0.0", 5353, 3505574);
  mdns.pid = 7;
  mdns.comm = "sshd";
  CHECK(r.listeners[2] == mdns);
}

TEST_CASE("the agent reads at most kMaxProcNetBytes of a /proc/net file, never a torn line", "[listeners][attack]") {
  test::TempDir proc;
  std::filesystem::create_directories(proc / "net");
  // established connections first, so the cap falls before the listener at the end
  std::string line = std::string(kTcp).substr(std::string(kTcp).find("   2:"));
  line = line.substr(0, line.find('\n') + 1);
  std::string text = "  sl  local_address rem_address   st\n";
  while (text.size() < guest::kMaxProcNetBytes + 1000) text += line;
  text += tcp_listen_line(1, 2222, 99);
  write_file(proc / "net/tcp", text);
  ListenersResult r = agent::list_listeners(proc.path());
  CHECK(r.listeners.empty());
  CHECK(r.truncated);
  // below the cap the same file is read whole
  text = "  sl  local_address rem_address   st\n";
  for (int i = 0; i < 20; ++i) text += line;
  write_file(proc / "net/tcp", text + tcp_listen_line(1, 2222, 99));
  r = agent::list_listeners(proc.path());
  CHECK_FALSE(r.truncated);
  CHECK(r.listeners == std::vector<Listener>{L("tcp", "ipv4", "0.0.0.0", 2222, 99)});
}

TEST_CASE("the owner scan stops after its limit of descriptors", "[listeners][attack]") {
  test::TempDir proc;
  std::filesystem::create_directories(proc / "net");
  write_file(proc / "net/tcp", kTcp);
  // three processes share the socket of :8000, one descriptor each
  for (const char* pid : {"10", "20", "30"}) {
    std::filesystem::create_directories(proc / (std::string(pid) + "/fd"));
    write_file(proc / (std::string(pid) + "/comm"), std::string("srv") + pid + "\n");
    REQUIRE(::symlink("socket:[3505567]", (proc / (std::string(pid) + "/fd/3")).c_str()) == 0);
  }
  CHECK_FALSE(agent::list_listeners(proc.path(), 0).listeners[1].pid);
  // one descriptor looked at: whichever process came first, not necessarily the lowest
  auto one = agent::list_listeners(proc.path(), 1).listeners[1];
  REQUIRE(one.pid);
  CHECK((*one.pid == 10 || *one.pid == 20 || *one.pid == 30));
  CHECK(one.comm == "srv" + std::to_string(*one.pid));
  // all of them: the lowest
  auto all = agent::list_listeners(proc.path(), 3).listeners[1];
  CHECK(all.pid == 10);
  CHECK(all.comm == "srv10");
}
