// The vm. zone's message handling, byte by byte, including hostile packets.
#include <catch2/catch.hpp>
#include <string>

#include "engine/net/dns_message.hpp"
#include "dns_fixtures.hpp"

using namespace banger::dns;
using test::name_bytes;

namespace {

std::string query(const std::string& name, std::uint16_t qtype = kTypeA, std::uint16_t flags = 0x0100,
                  std::uint16_t qdcount = 1) {
  std::string p = {'\x12', '\x34', static_cast<char>(flags >> 8), static_cast<char>(flags & 0xff), 0,
                   static_cast<char>(qdcount), 0, 0, 0, 0, 0, 0};
  p += name_bytes(name);
  p += {static_cast<char>(qtype >> 8), static_cast<char>(qtype & 0xff), 0, 1};
  return p;
}

std::optional<std::uint32_t> web(const std::string& vm) {
  if (vm == "web") return 0xac1e0005;  // 172.30.0.5
  return std::nullopt;
}

int rcode(const std::string& r) { return r[3] & 0xf; }
bool aa(const std::string& r) { return (r[2] & 0x04) != 0; }
int ancount(const std::string& r) { return (static_cast<unsigned char>(r[6]) << 8) | static_cast<unsigned char>(r[7]); }

}  // namespace

TEST_CASE("dns: A records for running VMs, authoritative", "[dns]") {
  auto r = respond(query("web.vm"), web);
  REQUIRE(r.size() > 12);
  CHECK(r[0] == '\x12');
  CHECK(r[1] == '\x34');
  CHECK((r[2] & 0x80) != 0);  // QR
  CHECK(aa(r));
  CHECK((r[2] & 0x01) != 0);  // RD echoed
  CHECK((r[3] & 0x80) == 0);  // RA never set
  CHECK(rcode(r) == 0);
  CHECK(ancount(r) == 1);
  CHECK(r.substr(r.size() - 4) == std::string("\xac\x1e\x00\x05", 4));
}

TEST_CASE("dns: names are case-insensitive and the question comes back as sent", "[dns]") {
  auto q = query("WeB.Vm");
  auto r = respond(q, web);
  CHECK(ancount(r) == 1);
  CHECK(r.substr(12, q.size() - 12) == q.substr(12));
}

TEST_CASE("dns: NXDOMAIN, NODATA, REFUSED, NOTIMP, FORMERR", "[dns]") {
  CHECK(rcode(respond(query("nope.vm"), web)) == 3);
  CHECK(aa(respond(query("nope.vm"), web)));
  CHECK(rcode(respond(query("a.web.vm"), web)) == 3);
  auto aaaa = respond(query("web.vm", 28), web);
  CHECK(rcode(aaaa) == 0);
  CHECK(ancount(aaaa) == 0);
  CHECK(aa(aaaa));
  CHECK(ancount(respond(query("web.vm", kTypeAny), web)) == 1);
  CHECK(rcode(respond(query("vm"), web)) == 0);
  CHECK(rcode(respond(query("example.com"), web)) == 5);
  CHECK(rcode(respond(query("vmx"), web)) == 5);
  CHECK_FALSE(aa(respond(query("example.com"), web)));
  CHECK(rcode(respond(query("web.vm", kTypeA, 0x1000 | 0x0100), web)) == 4);  // opcode 2 (STATUS)
  CHECK(rcode(respond(query("web.vm", kTypeA, 0x0100, 0), web)) == 1);
  CHECK(rcode(respond(query("web.vm", kTypeA, 0x0100, 2), web)) == 1);
}

TEST_CASE("dns: hostile packets never crash and never get more than an error", "[dns][attack]") {
  CHECK(respond("", web).empty());
  CHECK(respond(std::string(11, '\0'), web).empty());
  CHECK(respond(query("web.vm", kTypeA, 0x8000), web).empty());  // a response: never answered
  auto base = query("web.vm");
  // truncated question
  CHECK(rcode(respond(base.substr(0, base.size() - 3), web)) == 1);
  // a label running off the end
  std::string p = base.substr(0, 12) + "\x3f" + "abc";
  CHECK(rcode(respond(p, web)) == 1);
  // a pointer to itself, a forward pointer, a pointer into the header
  CHECK(rcode(respond(base.substr(0, 12) + std::string("\xc0\x0c\x00\x01\x00\x01", 6), web)) == 1);
  CHECK(rcode(respond(base.substr(0, 12) + std::string("\xc0\x20\x00\x01\x00\x01", 6), web)) == 1);
  CHECK(rcode(respond(base.substr(0, 12) + std::string("\xc0\x02\x00\x01\x00\x01", 6), web)) == 1);
  // reserved label type
  CHECK(rcode(respond(base.substr(0, 12) + std::string("\x80" "a\x00\x00\x01\x00\x01", 7), web)) == 1);
  // a name over 255 bytes
  std::string longname;
  for (int i = 0; i < 5; ++i) longname += std::string(60, 'a') + ".";
  longname += "vm";
  CHECK(rcode(respond(query(longname), web)) == 1);
  // a lookup that throws is not our crash
  CHECK_THROWS(respond(query("web.vm"), [](const std::string&) -> std::optional<std::uint32_t> {
    throw std::runtime_error("db gone");
  }));
  CHECK(rcode(servfail(query("web.vm"))) == 2);
}
