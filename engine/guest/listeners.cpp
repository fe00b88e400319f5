#include "engine/guest/listeners.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include "engine/core/error.hpp"

namespace banger::guest {
namespace {

using nlohmann::json;

constexpr unsigned kTcpListen = 0x0A;  // TCP_LISTEN in include/net/tcp_states.h
constexpr unsigned kTcpClose = 0x07;   // TCP_CLOSE: how an unconnected UDP socket shows

std::optional<std::uint64_t> parse_hex(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// Whitespace-separated fields of one line, at most `n` (the rest is ignored).
std::vector<std::string_view> fields(std::string_view line, size_t n) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (out.size() < n) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

std::optional<std::string> decode_proc_net_address(std::string_view hex) {
  if (hex.size() != 8 && hex.size() != 32) return std::nullopt;
  std::array<unsigned char, 16> bytes{};
  for (size_t w = 0; w < hex.size() / 8; ++w) {
    auto word = parse_hex(hex.substr(w * 8, 8), 8);
    if (!word) return std::nullopt;
    // The kernel printed the address's 32-bit words as native integers.
    auto native = static_cast<std::uint32_t>(*word);
    std::memcpy(bytes.data() + w * 4, &native, 4);
  }
  char text[INET6_ADDRSTRLEN] = {};
  int family = hex.size() == 8 ? AF_INET : AF_INET6;
  if (!inet_ntop(family, bytes.data(), text, sizeof text)) return std::nullopt;
  return std::string(text);
}

size_t parse_proc_net(std::string_view text, std::string_view proto, bool ipv6, ListenersResult& out) {
  const bool tcp = proto == "tcp";
  size_t malformed = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    auto f = fields(line, 10);
    if (f.empty() || f[0] == "sl") continue;
    if (f.size() < 10 || f[0].back() != ':') {
      ++malformed;
      continue;
    }
    size_t colon = f[1].find(':');
    auto st = parse_hex(f[3], 2);
    auto inode = parse_decimal(f[9]);
    if (colon == std::string_view::npos || !st || !inode) {
      ++malformed;
      continue;
    }
    std::string_view addr_hex = f[1].substr(0, colon);
    auto port = parse_hex(f[1].substr(colon + 1), 4);
    if (addr_hex.size() != (ipv6 ? 32u : 8u) || !port) {
      ++malformed;
      continue;
    }
    auto address = decode_proc_net_address(addr_hex);
    if (!address) {
      ++malformed;
      continue;
    }
    bool wanted = tcp ? *st == kTcpListen : (*st == kTcpClose && *port != 0);
    if (!wanted) continue;
    if (out.listeners.size() >= kMaxListeners) {
      out.truncated = true;
      break;
    }
    out.listeners.push_back({std::string(proto), ipv6 ? "ipv6" : "ipv4", *address, static_cast<std::uint16_t>(*port),
                             *inode, std::nullopt, ""});
  }
  return malformed;
}

json to_json(const ListenersResult& r) {
  json list = json::array();
  for (const auto& l : r.listeners) {
    json j = {{"proto", l.proto}, {"family", l.family}, {"address", l.address}, {"port", l.port}, {"inode", l.inode}};
    if (l.pid) {
      j["pid"] = *l.pid;
      j["comm"] = l.comm;
    }
    list.push_back(std::move(j));
  }
  return {{"listeners", std::move(list)}, {"truncated", r.truncated}};
}

ListenersResult parse_listeners(const json& j) {
  auto bad = [](const std::string& why) -> Error { return Error("EPROTO", "malformed listeners answer: " + why); };
  if (!j.is_object() || !j.contains("listeners") || !j["listeners"].is_array()) throw bad("no listeners array");
  ListenersResult r;
  r.truncated = j.value("truncated", false);
  for (const json& e : j["listeners"]) {
    if (!e.is_object()) throw bad("an entry is not an object");
    Listener l;
    auto str = [&](const char* key) {
      auto it = e.find(key);
      if (it == e.end() || !it->is_string()) throw bad(std::string(key) + " must be a string");
      return it->get<std::string>();
    };
    l.proto = str("proto");
    l.family = str("family");
    l.address = str("address");
    auto port = e.find("port");
    if (port == e.end() || !port->is_number_unsigned() || port->get<std::uint64_t>() > 65535)
      throw bad("port must be 0 to 65535");
    l.port = static_cast<std::uint16_t>(port->get<std::uint64_t>());
    auto inode = e.find("inode");
    if (inode == e.end() || !inode->is_number_unsigned()) throw bad("inode must be an unsigned integer");
    l.inode = inode->get<std::uint64_t>();
    if (auto pid = e.find("pid"); pid != e.end() && !pid->is_null()) {
      if (!pid->is_number_integer() || pid->get<std::int64_t>() <= 0 || pid->get<std::int64_t>() > 0x3fffffff)
        throw bad("pid must be a positive integer");
      l.pid = static_cast<int>(pid->get<std::int64_t>());
      auto comm = e.find("comm");
      if (comm != e.end() && !comm->is_null()) {
        if (!comm->is_string()) throw bad("comm must be a string");
        l.comm = comm->get<std::string>();
      }
    }
    r.listeners.push_back(std::move(l));
  }
  return r;
}

}  // namespace banger::guest
