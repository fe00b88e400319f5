#include "engine/net/dns_egress.hpp"

#include <algorithm>

#include "engine/net/dns_message.hpp"

namespace banger::dns {
namespace {

constexpr std::uint16_t kTypeCname = 5;

std::uint16_t u16(std::string_view p, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(p[at]) << 8) | static_cast<unsigned char>(p[at + 1]));
}

std::uint32_t u32(std::string_view p, std::size_t at) {
  return (static_cast<std::uint32_t>(u16(p, at)) << 16) | u16(p, at + 2);
}

}  // namespace

bool host_allowed(const std::vector<std::string>& patterns, std::string_view name) {
  for (const auto& p : patterns) {
    if (p.rfind("*.", 0) == 0) {
      std::string_view suffix = std::string_view(p).substr(1);  // ".a.b"
      if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) return true;
    } else if (name == p) {
      return true;
    }
  }
  return false;
}

std::string refused(std::string_view packet) {
  auto q = parse_query(packet);
  if (!q) return {};
  std::string out;
  out.push_back(static_cast<char>(q->id >> 8));
  out.push_back(static_cast<char>(q->id & 0xff));
  std::uint16_t flags = 0x8000 | static_cast<std::uint16_t>((q->opcode & 0xf) << 11) |
                        (q->recursion_desired ? 0x0100 : 0) | static_cast<std::uint16_t>(Rcode::refused);
  out.push_back(static_cast<char>(flags >> 8));
  out.push_back(static_cast<char>(flags & 0xff));
  bool echo = q->question.has_value();
  for (std::uint16_t v : {static_cast<std::uint16_t>(echo ? 1 : 0), std::uint16_t{0}, std::uint16_t{0}, std::uint16_t{0}}) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
  }
  if (echo) out += packet.substr(12, q->question_end - 12);
  return out;
}

std::optional<UpstreamAnswer> parse_answer(std::string_view p, std::string_view name) {
  if (p.size() < 12) return std::nullopt;
  UpstreamAnswer a;
  a.id = u16(p, 0);
  std::uint16_t flags = u16(p, 2);
  if (!(flags & 0x8000)) return std::nullopt;  // not a response
  a.rcode = static_cast<std::uint8_t>(flags & 0xf);
  std::uint16_t qd = u16(p, 4), an = u16(p, 6);
  std::size_t pos = 12;
  for (std::uint16_t i = 0; i < qd; ++i) {
    std::string ignored;
    auto after = read_name(p, pos, ignored);
    if (!after || *after + 4 > p.size()) return std::nullopt;
    pos = *after + 4;
  }
  a.question = std::string(p.substr(12, pos - 12));
  // The chain of names that lead to the addresses: the question's name,
  // then each CNAME target whose owner is already in the chain.
  std::vector<std::string> chain = {std::string(name)};
  struct Rr {
    std::string owner;
    std::uint16_t type;
    std::uint32_t ttl;
    std::size_t rdata, rdlen;
  };
  std::vector<Rr> records;
  for (std::uint16_t i = 0; i < an; ++i) {
    Rr r;
    auto after = read_name(p, pos, r.owner);
    if (!after || *after + 10 > p.size()) return std::nullopt;
    r.type = u16(p, *after);
    r.ttl = u32(p, *after + 4);
    r.rdlen = u16(p, *after + 8);
    r.rdata = *after + 10;
    if (r.rdata + r.rdlen > p.size()) return std::nullopt;
    pos = r.rdata + r.rdlen;
    records.push_back(std::move(r));
  }
  auto in_chain = [&](const std::string& n) { return std::find(chain.begin(), chain.end(), n) != chain.end(); };
  for (const auto& r : records) {
    if (r.type == kTypeCname && in_chain(r.owner)) {
      std::string target;
      if (read_name(p, r.rdata, target) && !in_chain(target)) chain.push_back(target);
    }
  }
  for (const auto& r : records) {
    if (r.type == kTypeA && r.rdlen == 4 && in_chain(r.owner)) a.addresses.push_back({u32(p, r.rdata), r.ttl});
  }
  return a;
}

std::string cap_ttls(std::string_view p, std::uint32_t max_ttl) {
  std::string out(p);
  if (p.size() < 12) return out;
  std::size_t pos = 12;
  std::uint16_t qd = u16(p, 4);
  std::uint32_t records = static_cast<std::uint32_t>(u16(p, 6)) + u16(p, 8) + u16(p, 10);
  for (std::uint16_t i = 0; i < qd; ++i) {
    std::string ignored;
    auto after = read_name(p, pos, ignored);
    if (!after || *after + 4 > p.size()) return std::string(p);
    pos = *after + 4;
  }
  for (std::uint32_t i = 0; i < records; ++i) {
    std::string ignored;
    auto after = read_name(p, pos, ignored);
    if (!after || *after + 10 > p.size()) return std::string(p);
    std::uint16_t type = u16(p, *after);
    std::size_t ttl_at = *after + 4;
    std::size_t rdlen = u16(p, *after + 8);
    if (*after + 10 + rdlen > p.size()) return std::string(p);
    // OPT (EDNS) carries flags, not a TTL, in that field.
    if (type != 41 && u32(p, ttl_at) > max_ttl) {
      for (int b = 0; b < 4; ++b) out[ttl_at + b] = static_cast<char>((max_ttl >> (24 - 8 * b)) & 0xff);
    }
    pos = *after + 10 + rdlen;
  }
  return out;
}

}  // namespace banger::dns
