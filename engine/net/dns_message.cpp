#include "engine/net/dns_message.hpp"

namespace banger::dns {
namespace {

std::uint16_t u16(std::string_view p, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(p[at]) << 8) | static_cast<unsigned char>(p[at + 1]));
}

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put32(std::string& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v & 0xffff));
}


std::string header(const Query& q, Rcode rcode, bool authoritative, std::uint16_t qd, std::uint16_t an) {
  std::string out;
  put16(out, q.id);
  std::uint16_t flags = 0x8000;                                 // QR
  flags |= static_cast<std::uint16_t>((q.opcode & 0xf) << 11);  // opcode echoed
  if (authoritative) flags |= 0x0400;                           // AA
  if (q.recursion_desired) flags |= 0x0100;                     // RD echoed; RA stays 0
  flags |= static_cast<std::uint16_t>(rcode);
  put16(out, flags);
  put16(out, qd);
  put16(out, an);
  put16(out, 0);
  put16(out, 0);
  return out;
}

}  // namespace

std::optional<std::size_t> read_name(std::string_view p, std::size_t at, std::string& name) {
  std::size_t pos = at;
  std::optional<std::size_t> end;
  std::size_t total = 0;
  std::size_t limit = p.size();  // pointers must land before this
  for (int hops = 0; hops < 128; ++hops) {
    if (pos >= p.size()) return std::nullopt;
    auto len = static_cast<unsigned char>(p[pos]);
    if (len == 0) {
      if (!end) end = pos + 1;
      return end;
    }
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= p.size()) return std::nullopt;
      std::size_t target = static_cast<std::size_t>(u16(p, pos) & 0x3fff);
      if (target >= limit || target >= pos) return std::nullopt;
      if (!end) end = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return std::nullopt;  // reserved label types
    if (pos + 1 + len > p.size()) return std::nullopt;
    total += len + 1;
    if (total > 255) return std::nullopt;
    if (!name.empty()) name.push_back('.');
    for (std::size_t i = 0; i < len; ++i) {
      char c = p[pos + 1 + i];
      name.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
    pos += 1 + len;
  }
  return std::nullopt;
}

std::optional<Query> parse_query(std::string_view p) {
  if (p.size() < 12) return std::nullopt;
  Query q;
  q.id = u16(p, 0);
  q.flags = u16(p, 2);
  if (q.flags & 0x8000) return std::nullopt;  // a response: never answer those (reflection loops)
  q.opcode = static_cast<std::uint8_t>((q.flags >> 11) & 0xf);
  q.recursion_desired = (q.flags & 0x0100) != 0;
  if (u16(p, 4) != 1) return q;  // qdcount: exactly one question, else FORMERR
  std::string name;
  auto after = read_name(p, 12, name);
  if (!after || *after + 4 > p.size()) return q;
  // A first question has nothing before it to point at; a pointer there is
  // malformed (and could not be echoed faithfully).
  for (std::size_t pos = 12; pos < *after && p[pos] != 0; pos += 1 + static_cast<unsigned char>(p[pos])) {
    if ((static_cast<unsigned char>(p[pos]) & 0xc0) != 0) return q;
  }
  q.question = Question{name, u16(p, *after), u16(p, *after + 2)};
  q.question_end = *after + 4;
  return q;
}

std::string servfail(std::string_view packet) {
  auto q = parse_query(packet);
  if (!q) return {};
  return header(*q, Rcode::servfail, false, 0, 0);
}

std::string respond(std::string_view packet, const Lookup& lookup, std::uint32_t ttl) {
  auto q = parse_query(packet);
  if (!q) return {};
  if (q->opcode != 0) return header(*q, Rcode::notimp, false, 0, 0);
  if (!q->question) return header(*q, Rcode::formerr, false, 0, 0);
  const Question& question = *q->question;
  // The question is echoed byte for byte: resolvers that randomise the
  // case of names (DNS 0x20) check that it comes back unchanged.
  std::string qsection(packet.substr(12, q->question_end - 12));

  const std::string& n = question.name;
  bool in_zone = n == "vm" || (n.size() > 3 && n.compare(n.size() - 3, 3, ".vm") == 0);
  if (!in_zone) return header(*q, Rcode::refused, false, 1, 0) + qsection;
  if (question.qclass != kClassIn && question.qclass != kClassAny) {
    return header(*q, Rcode::refused, false, 1, 0) + qsection;
  }
  if (n == "vm") return header(*q, Rcode::noerror, true, 1, 0) + qsection;  // the zone apex: NODATA
  std::string label = n.substr(0, n.size() - 3);
  if (label.find('.') != std::string::npos) return header(*q, Rcode::nxdomain, true, 1, 0) + qsection;
  auto ip = lookup(label);
  if (!ip) return header(*q, Rcode::nxdomain, true, 1, 0) + qsection;
  if (question.qtype != kTypeA && question.qtype != kTypeAny) {
    return header(*q, Rcode::noerror, true, 1, 0) + qsection;  // the name exists: NODATA
  }
  std::string answer;
  put16(answer, 0xc00c);  // the name: a pointer to the question at offset 12
  put16(answer, kTypeA);
  put16(answer, kClassIn);
  put32(answer, ttl);
  put16(answer, 4);
  put32(answer, *ip);
  return header(*q, Rcode::noerror, true, 1, 1) + qsection + answer;
}

}  // namespace banger::dns
