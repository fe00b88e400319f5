#pragma once
// DNS messages for banger's authoritative `vm.` zone (RFC 1035): parse a
// query, build the answer. Pure functions over bytes, so every hostile
// packet can be tested and fuzzed without a socket.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::dns {

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeAny = 255;
inline constexpr std::uint16_t kClassIn = 1;
inline constexpr std::uint16_t kClassAny = 255;

enum class Rcode : std::uint8_t { noerror = 0, formerr = 1, servfail = 2, nxdomain = 3, notimp = 4, refused = 5 };

struct Question {
  std::string name;  // lower-case, dot-separated, no trailing dot ("web.vm")
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
};

struct Query {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;  // as received
  std::uint8_t opcode = 0;
  bool recursion_desired = false;
  std::optional<Question> question;  // absent when it could not be parsed
  std::size_t question_end = 12;     // offset just past the question (for echoing it)
};

// Parses the header and the first question. nullopt when the packet is not
// worth answering at all: shorter than a header, or itself a response.
std::optional<Query> parse_query(std::string_view packet);

// Looks up a VM name (the label before ".vm"); returns its IPv4 address in
// host byte order, or nullopt.
using Lookup = std::function<std::optional<std::uint32_t>(const std::string& vm)>;

// The response to `packet` (empty when none should be sent):
//   not QUERY opcode -> NOTIMP; no or malformed question / qdcount != 1 -> FORMERR
//   outside vm. -> REFUSED; <vm>.vm unknown, or deeper names -> NXDOMAIN (authoritative)
//   known name: A (or ANY) class IN -> the address, TTL `ttl`; other types -> NODATA
std::string respond(std::string_view packet, const Lookup& lookup, std::uint32_t ttl = 5);

// Reads a (possibly compressed) name of `packet` starting at `at` into
// `name` (lower-case, dot-separated). Returns the offset just past the name
// where it starts, or nullopt when malformed: out of bounds, a label over 63
// bytes, a name over 255, a pointer that does not point strictly backwards
// (which also rules out loops). Shared by the responder and the egress
// resolver's answer parser.
std::optional<std::size_t> read_name(std::string_view packet, std::size_t at, std::string& name);

// SERVFAIL for `packet` (the lookup itself failed), or empty.
std::string servfail(std::string_view packet);

}  // namespace banger::dns
