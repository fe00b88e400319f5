// The egress resolver's pure parts against well-formed and hostile bytes:
// upstream answers (CNAME chains, compression, records for other names,
// truncation, pointer loops), the TTL cap, REFUSED, and name matching.
#include <catch2/catch.hpp>
#include <string>

#include "engine/net/dns_egress.hpp"
#include "engine/net/dns_message.hpp"
#include "dns_fixtures.hpp"

using namespace banger::dns;
using test::name_bytes;

namespace {

std::string u16(std::uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string u32(std::uint32_t v) { return u16(static_cast<std::uint16_t>(v >> 16)) + u16(static_cast<std::uint16_t>(v)); }

std::string header(std::uint16_t flags, std::uint16_t qd, std::uint16_t an) {
  return u16(0x1234) + u16(flags) + u16(qd) + u16(an) + u16(0) + u16(0);
}

std::string question(const std::string& name) { return name_bytes(name) + u16(1) + u16(1); }

std::string record(const std::string& owner_bytes, std::uint16_t type, std::uint32_t ttl, const std::string& rdata) {
  return owner_bytes + u16(type) + u16(1) + u32(ttl) + u16(static_cast<std::uint16_t>(rdata.size())) + rdata;
}

std::string a(std::uint8_t last) { return std::string{10, 0, 0, static_cast<char>(last)}; }

}  // namespace

TEST_CASE("dns egress: an answer's A records for the name, through its CNAME chain") {
  // www.x.test CNAME cdn.y.test (compressed: pointer to the question), cdn.y.test A 10.0.0.7,
  // plus an A record for an unrelated name the guest did not ask about.
  std::string p = header(0x8180, 1, 3) + question("www.x.test");
  p += record(u16(0xc00c), 5, 60, name_bytes("cdn.y.test"));
  p += record(name_bytes("cdn.y.test"), 1, 30, a(7));
  p += record(name_bytes("evil.test"), 1, 30, a(9));
  auto ans = parse_answer(p, "www.x.test");
  REQUIRE(ans);
  CHECK(ans->rcode == 0);
  REQUIRE(ans->addresses.size() == 1);
  CHECK(ans->addresses[0].address == 0x0a000007);
  CHECK(ans->addresses[0].ttl == 30);
}

TEST_CASE("dns egress: hostile answers parse to nothing, never past the packet") {
  std::string q = header(0x8180, 1, 1) + question("a.test");
  // rdlength beyond the packet
  CHECK_FALSE(parse_answer(q + name_bytes("a.test") + u16(1) + u16(1) + u32(5) + u16(200) + "abcd", "a.test"));
  // a compression pointer to itself / forwards
  CHECK_FALSE(parse_answer(q + u16(0xc000 | static_cast<std::uint16_t>(q.size())) + u16(1) + u16(1) + u32(5) + u16(4) + a(1),
                           "a.test"));
  // a query, not a response
  CHECK_FALSE(parse_answer(header(0x0100, 1, 0) + question("a.test"), "a.test"));
  CHECK_FALSE(parse_answer(std::string(5, '\0'), "a.test"));
  // an A record with a wrong length is ignored
  auto odd = parse_answer(q + record(u16(0xc00c), 1, 5, "abc"), "a.test");
  REQUIRE(odd);
  CHECK(odd->addresses.empty());
}

TEST_CASE("dns egress: TTLs are capped, OPT records left alone") {
  std::string p = header(0x8180, 1, 1) + question("a.test") + record(u16(0xc00c), 1, 86400, a(1));
  p[11] = 1;  // arcount 1: an OPT record whose "TTL" holds flags
  p += std::string(1, '\0') + u16(41) + u16(4096) + u32(0x00008000) + u16(0);
  std::string capped = cap_ttls(p, 300);
  auto ans = parse_answer(capped, "a.test");
  REQUIRE(ans);
  CHECK(ans->addresses[0].ttl == 300);
  CHECK(capped.substr(capped.size() - 6, 4) == u32(0x00008000));
  CHECK(cap_ttls("garbage", 300) == "garbage");
}

TEST_CASE("dns egress: REFUSED echoes the question and nothing else") {
  std::string q = header(0x0100, 1, 0) + question("other.test");
  std::string r = refused(q);
  REQUIRE(r.size() == q.size());
  CHECK((static_cast<unsigned char>(r[2]) & 0x80) != 0);
  CHECK((r[3] & 0xf) == 5);
  CHECK(r.substr(12) == q.substr(12));
  CHECK(refused(header(0x8180, 1, 0) + question("x.test")).empty());  // never answer a response
}

TEST_CASE("dns egress: allow-list matching") {
  std::vector<std::string> list = {"a.test", "*.b.test"};
  CHECK(host_allowed(list, "a.test"));
  CHECK_FALSE(host_allowed(list, "x.a.test"));
  CHECK(host_allowed(list, "x.b.test"));
  CHECK_FALSE(host_allowed(list, "b.test"));
  CHECK_FALSE(host_allowed(list, "xb.test"));
}
