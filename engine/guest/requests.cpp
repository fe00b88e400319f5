#include "engine/guest/requests.hpp"

#include <arpa/inet.h>

#include "engine/core/error.hpp"

namespace banger::guest {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& what, const std::string& why) {
  throw Error("EINVAL", what + ": " + why);
}

bool chars_in(const std::string& s, std::string_view extra) {
  for (char c : s) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

// Absent and null are the same: the field was not given.
const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string string_field(const json& j, const char* key, const std::string& what, bool required) {
  const json* v = field(j, key);
  if (!v) {
    if (required) invalid(what, std::string(key) + " is missing");
    return "";
  }
  if (!v->is_string()) invalid(what, std::string(key) + " must be a string");
  return v->get<std::string>();
}

std::int64_t integer_field(const json& j, const char* key, const std::string& what, std::int64_t fallback,
                           bool required) {
  const json* v = field(j, key);
  if (!v) {
    if (required) invalid(what, std::string(key) + " is missing");
    return fallback;
  }
  if (!v->is_number_integer()) invalid(what, std::string(key) + " must be an integer");
  return v->get<std::int64_t>();
}

bool ipv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool ip_any(const std::string& s) {
  in6_addr a{};
  return ipv4(s) || inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string to_hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(const std::string& hex, const std::string& what) {
  if (hex.size() % 2) invalid(what, "entropy must be hex digits in pairs");
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0) invalid(what, "entropy must be hex digits");
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

// RFC 1123 labels, at most HOST_NAME_MAX (64) in all.
void check_hostname(const std::string& h, const std::string& what) {
  if (h.empty() || h.size() > 64) invalid(what, "hostname must be 1 to 64 characters");
  size_t start = 0;
  for (;;) {
    size_t dot = h.find('.', start);
    std::string label = h.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63 || !chars_in(label, "-") || label.front() == '-' || label.back() == '-')
      invalid(what, "hostname '" + h + "' is not a valid host name (letters, digits, '-', dot-separated labels)");
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
}

void check_mac(const std::string& mac, const std::string& what) {
  bool ok = mac.size() == 17;
  for (size_t i = 0; ok && i < mac.size(); ++i) {
    ok = (i % 3 == 2) ? mac[i] == ':' : hex_digit(mac[i]) >= 0;
  }
  if (!ok) invalid(what, "mac '" + mac + "' is not of the form 02:ab:cd:ef:01:23");
  if (hex_digit(mac[1]) & 1) invalid(what, "mac '" + mac + "' is a multicast address");
  if (mac == "00:00:00:00:00:00") invalid(what, "mac is all zeros");
}

NetConfig parse_net(const json& j) {
  const std::string what = "reidentify net";
  if (!j.is_object()) invalid(what, "net must be an object");
  NetConfig n;
  n.dev = string_field(j, "dev", what, false);
  if (n.dev.empty()) n.dev = "eth0";
  if (n.dev.size() > 15 || !chars_in(n.dev, "._-")) invalid(what, "dev '" + n.dev + "' is not an interface name");
  n.mac = string_field(j, "mac", what, true);
  check_mac(n.mac, what);
  n.address = string_field(j, "address", what, true);
  if (!ipv4(n.address)) invalid(what, "address '" + n.address + "' is not an IPv4 address");
  std::int64_t prefix = integer_field(j, "prefix", what, 0, true);
  if (prefix < 1 || prefix > 32) invalid(what, "prefix must be 1 to 32");
  n.prefix = static_cast<int>(prefix);
  n.gateway = string_field(j, "gateway", what, false);
  if (!n.gateway.empty() && !ipv4(n.gateway)) invalid(what, "gateway '" + n.gateway + "' is not an IPv4 address");
  return n;
}

}  // namespace

json to_json(const ReidentifyRequest& r) {
  json j = {{"generation", r.generation}, {"hostname", r.hostname},   {"machine_id", r.machine_id},
            {"time_ns", r.time_ns},       {"entropy", to_hex(r.entropy)}, {"ssh_host_keys", r.ssh_host_keys}};
  if (r.net) {
    j["net"] = {{"dev", r.net->dev}, {"mac", r.net->mac}, {"address", r.net->address}, {"prefix", r.net->prefix}};
    if (!r.net->gateway.empty()) j["net"]["gateway"] = r.net->gateway;
  }
  if (r.dns) j["dns"] = *r.dns;
  return j;
}

json to_json(const MountRequest& r) {
  return {{"serial", r.serial}, {"target", r.target}, {"fstype", r.fstype}, {"timeout_ms", r.timeout_ms}};
}

ReidentifyRequest parse_reidentify(const json& j) {
  const std::string what = "reidentify";
  if (!j.is_object()) invalid(what, "the request must be an object");
  ReidentifyRequest r;
  r.generation = string_field(j, "generation", what, true);
  if (r.generation.empty() || r.generation.size() > 64 || !chars_in(r.generation, "._-"))
    invalid(what, "generation must be 1 to 64 letters, digits, '.', '_' or '-'");
  r.hostname = string_field(j, "hostname", what, true);
  check_hostname(r.hostname, what);
  r.machine_id = string_field(j, "machine_id", what, true);
  bool hex = r.machine_id.size() == 32;
  for (char c : r.machine_id) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) invalid(what, "machine_id must be 32 lowercase hex digits");
  if (r.machine_id == std::string(32, '0')) invalid(what, "machine_id must not be all zeros");
  r.time_ns = integer_field(j, "time_ns", what, 0, true);
  if (r.time_ns <= 0) invalid(what, "time_ns must be a positive CLOCK_REALTIME in nanoseconds");
  r.entropy = from_hex(string_field(j, "entropy", what, true), what);
  if (r.entropy.size() < kMinEntropy || r.entropy.size() > kMaxEntropy)
    invalid(what, "entropy must be " + std::to_string(kMinEntropy) + " to " + std::to_string(kMaxEntropy) +
                      " bytes, got " + std::to_string(r.entropy.size()));
  if (const json* net = field(j, "net")) r.net = parse_net(*net);
  if (const json* dns = field(j, "dns")) {
    if (!dns->is_array() || dns->empty() || dns->size() > 8) invalid(what, "dns must be a list of 1 to 8 addresses");
    std::vector<std::string> servers;
    for (const json& s : *dns) {
      if (!s.is_string() || !ip_any(s.get<std::string>()))
        invalid(what, "dns entry " + s.dump() + " is not an IP address");
      servers.push_back(s.get<std::string>());
    }
    r.dns = servers;
  }
  if (const json* keys = field(j, "ssh_host_keys")) {
    if (!keys->is_boolean()) invalid(what, "ssh_host_keys must be a boolean");
    r.ssh_host_keys = keys->get<bool>();
  }
  return r;
}

MountRequest parse_mount(const json& j) {
  const std::string what = "mount";
  if (!j.is_object()) invalid(what, "the request must be an object");
  MountRequest m;
  m.serial = string_field(j, "serial", what, true);
  if (m.serial.empty() || m.serial.size() > kMaxSerial || !chars_in(m.serial, "._-"))
    invalid(what, "serial must be 1 to " + std::to_string(kMaxSerial) + " letters, digits, '.', '_' or '-'");
  m.target = string_field(j, "target", what, true);
  if (m.target.size() < 2 || m.target[0] != '/' || m.target.size() > 1024 ||
      m.target.find('\0') != std::string::npos)
    invalid(what, "target must be an absolute path other than /");
  for (size_t start = 1; start <= m.target.size();) {
    size_t slash = m.target.find('/', start);
    std::string part = m.target.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") invalid(what, "target must not contain '..'");
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string fstype = string_field(j, "fstype", what, false);
  if (!fstype.empty()) m.fstype = fstype;
  if (m.fstype.size() > 32 || !chars_in(m.fstype, "._")) invalid(what, "fstype '" + m.fstype + "' is not a filesystem type");
  std::int64_t timeout = integer_field(j, "timeout_ms", what, m.timeout_ms, false);
  if (timeout < 0 || timeout > kMaxMountTimeoutMs)
    invalid(what, "timeout_ms must be 0 to " + std::to_string(kMaxMountTimeoutMs));
  m.timeout_ms = static_cast<int>(timeout);
  return m;
}

}  // namespace banger::guest
