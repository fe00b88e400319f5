#include "engine/priv/validate.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::validate {
namespace {

[[noreturn]] void reject(std::string_view what, std::string_view value, std::string_view rule) {
  throw Error("EINVAL", "invalid " + std::string(what) + " '" + std::string(value) + "': " + std::string(rule));
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

void iface_name(std::string_view name) {
  if (name.empty() || name.size() > 15) reject("interface name", name, "must be 1 to 15 characters");
  for (char c : name) {
    if (c == '/' || c == ':' || c == '\0' || c == ' ' || c == '\t' || c == '\n' || static_cast<unsigned char>(c) < 0x21 ||
        static_cast<unsigned char>(c) > 0x7e)
      reject("interface name", name, "contains a character Linux does not allow");
  }
  if (name == "." || name == "..") reject("interface name", name, "is reserved");
}

void bridge_name(std::string_view name) {
  iface_name(name);
  if (name == kBridgeName) return;
  if (name.size() > kBridgeName.size() + 1 && name.substr(0, kBridgeName.size() + 1) == "br-fc-") {
    for (char c : name.substr(kBridgeName.size() + 1)) {
      if (!lower_alnum(c) && c != '-') reject("bridge name", name, "suffix may only use a-z, 0-9 and '-'");
    }
    return;
  }
  reject("bridge name", name, "must be 'br-fc' or start with 'br-fc-' (banger only manages its own bridges)");
}

void tap_name(std::string_view name) {
  iface_name(name);
  if (name.size() <= kTapPrefix.size() || name.substr(0, kTapPrefix.size()) != kTapPrefix)
    reject("tap name", name, "must start with '" + std::string(kTapPrefix) + "'");
  for (char c : name.substr(kTapPrefix.size())) {
    if (!lower_alnum(c)) reject("tap name", name, "may only use a-z and 0-9 after the prefix");
  }
}

void home_tag(std::string_view tag) {
  if (tag.size() != 16) reject("home tag", tag, "must be 16 hex digits");
  for (char c : tag) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) reject("home tag", tag, "must be 16 lowercase hex digits");
  }
}

std::uint32_t ipv4(std::string_view addr) {
  // inet_pton accepts exactly four decimal octets, nothing shorter or octal.
  std::string s(addr);
  in_addr a{};
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &a) != 1) reject("IPv4 address", addr, "not a dotted-quad IPv4 address");
  return ntohl(a.s_addr);
}

int cidr_prefix(long prefix) {
  if (prefix < 8 || prefix > 32)
    reject("CIDR prefix", std::to_string(prefix), "must be between 8 and 32");
  return static_cast<int>(prefix);
}

std::uint32_t unicast_ipv4(std::string_view addr) {
  std::uint32_t a = ipv4(addr);
  auto in = [a](std::uint32_t net, int bits) { return (a >> (32 - bits)) == (net >> (32 - bits)); };
  if (in(0x00000000, 8)) reject("IPv4 address", addr, "is in 0.0.0.0/8 ('this network'), which no interface can have");
  if (in(0x7f000000, 8)) reject("IPv4 address", addr, "is a loopback address (127.0.0.0/8): guests cannot reach it");
  if (in(0xe0000000, 4)) reject("IPv4 address", addr, "is a multicast address (224.0.0.0/4)");
  if (a == 0xffffffffu) reject("IPv4 address", addr, "is the limited broadcast address");
  if (in(0xf0000000, 4)) reject("IPv4 address", addr, "is in the reserved range 240.0.0.0/4");
  return a;
}

std::uint32_t bridge_address(std::string_view addr, long prefix) {
  std::uint32_t a = unicast_ipv4(addr);
  int bits = cidr_prefix(prefix);
  std::string shown = std::string(addr) + "/" + std::to_string(bits);
  if (bits == 32) reject("bridge address", shown, "a /32 network leaves no address for guests");
  if (bits <= 30) {
    // /31 has no network or broadcast address (RFC 3021); wider ones do.
    std::uint32_t host = ~(0xffffffffu << (32 - bits));
    if ((a & host) == 0) reject("bridge address", shown, "is the network's own address; use a host address in it");
    if ((a & host) == host) reject("bridge address", shown, "is the network's broadcast address; use a host address in it");
  }
  return a;
}

void vm_name(std::string_view name) {
  if (name.empty() || name.size() > 63) reject("VM name", name, "must be 1 to 63 characters");
  if (!(name[0] >= 'a' && name[0] <= 'z')) reject("VM name", name, "must start with a lower-case letter");
  if (name.back() == '-') reject("VM name", name, "must not end with '-'");
  for (char c : name) {
    if (!lower_alnum(c) && c != '-') reject("VM name", name, "may only use a-z, 0-9 and '-' (it becomes <name>.vm)");
  }
}

std::string allow_host(std::string_view pattern) {
  std::string s(pattern);
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!s.empty() && s.back() == '.') s.pop_back();
  std::string_view name = s;
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  if (name.empty() || s == "*") reject("allowed host", pattern, "needs a name ('*' alone would allow everything)");
  if (name.size() > 253) reject("allowed host", pattern, "is longer than 253 characters");
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63) reject("allowed host", pattern, "each label must be 1 to 63 characters");
    if (label.front() == '-' || label.back() == '-') reject("allowed host", pattern, "a label must not start or end with '-'");
    for (char c : label) {
      if (c == '*') reject("allowed host", pattern, "'*' is only allowed as a leading '*.'");
      if (!lower_alnum(c) && c != '-' && c != '_') reject("allowed host", pattern, "may only use a-z, 0-9, '-', '_' and '.'");
    }
    start = dot + 1;
  }
  return s;
}

UniqueFd open_root_executable(const std::string& path) {
  if (path.empty() || path.front() != '/') throw Error("EPERM", "refusing '" + path + "': not an absolute path");
  UniqueFd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw Error::last("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("fstat", path);
  auto refuse = [&](const std::string& why) { throw Error("EPERM", "refusing " + path + ": " + why); };
  if (S_ISLNK(st.st_mode)) refuse("it is a symlink (name the file itself)");
  if (!S_ISREG(st.st_mode)) refuse("not a regular file");
  if (st.st_uid != 0) refuse("owned by uid " + std::to_string(st.st_uid) + ", not root: its owner could replace what root runs");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) refuse("writable by group or others");
  if (!(st.st_mode & S_IXUSR)) refuse("not executable");
  return fd;
}

void root_executable(const std::string& path) { open_root_executable(path); }

}  // namespace banger::validate
