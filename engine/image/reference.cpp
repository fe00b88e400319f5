#include "engine/image/reference.hpp"

#include <algorithm>
#include <cctype>

#include "engine/core/error.hpp"

namespace banger::image {
namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw Error("EINVAL", "invalid image reference \"" + std::string(text) + "\": " + why);
}

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// distribution's path component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !alnum(c.front()) || !alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || std::all_of(sep.begin(), sep.end(), [](char x) { return x == '-'; });
    if (!ok) return false;
    i = j;
  }
  return true;
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  return std::all_of(t.begin(), t.end(), [&](char c) { return word(c) || c == '.' || c == '-'; });
}

// A host: DNS labels or an IPv4 address or a bracketed IPv6 address, then an optional :port.
bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  std::string_view name = h, port;
  if (h.front() == '[') {
    size_t close = h.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view inner = h.substr(1, close - 1);
    if (inner.empty() || !std::all_of(inner.begin(), inner.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }))
      return false;
    std::string_view rest = h.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    name = {};
  } else if (size_t colon = h.find(':'); colon != std::string_view::npos) {
    name = h.substr(0, colon);
    port = h.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    if (std::stoi(std::string(port)) > 65535) return false;
  }
  if (h.front() == '[') return true;
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; })) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return r;
}

std::string host_only(const std::string& registry) {
  if (!registry.empty() && registry.front() == '[') return registry.substr(0, registry.find(']') + 1);
  return registry.substr(0, registry.find(':'));
}

}  // namespace

bool valid_digest(std::string_view d) {
  if (d.size() != 7 + 64 || d.substr(0, 7) != "sha256:") return false;
  return std::all_of(d.begin() + 7, d.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void check_digest(std::string_view d, std::string_view what) {
  if (!valid_digest(d))
    throw Error("EINVAL", std::string(what) + ": invalid digest \"" + std::string(d.substr(0, 100)) + "\" (want sha256:<64 hex>)");
}

Reference parse_reference(std::string_view text) {
  if (text.empty()) bad(text, "empty");
  if (text.size() > 4096) bad(text.substr(0, 64), "too long");
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) bad(text, "contains whitespace or control characters");

  Reference r;
  std::string_view name = text;
  if (size_t at = name.find('@'); at != std::string_view::npos) {
    std::string_view d = name.substr(at + 1);
    name = name.substr(0, at);
    if (d.substr(0, 7) != "sha256:") bad(text, "only sha256 digests are supported");
    if (!valid_digest(d)) bad(text, "digest must be sha256: followed by 64 lowercase hex digits");
    r.digest = std::string(d);
  }
  // The tag is after the last ':' that follows the last '/', so a registry
  // port ("localhost:5000/x") is not mistaken for one.
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view t = name.substr(colon + 1);
    if (!valid_tag(t)) bad(text, "invalid tag \"" + std::string(t) + "\"");
    r.tag = std::string(t);
    name = name.substr(0, colon);
  }
  if (name.empty()) bad(text, "no repository name");

  // The first component is a registry when it looks like a host: it has a
  // '.' or ':' or '[' or is "localhost" (docker's rule), and more follows.
  size_t first = name.find('/');
  if (first != std::string_view::npos) {
    std::string_view head = name.substr(0, first);
    if (head.find_first_of(".:[") != std::string_view::npos || head == "localhost") {
      if (!valid_host(head)) bad(text, "invalid registry host \"" + std::string(head) + "\"");
      r.registry = lower(head);
      name = name.substr(first + 1);
    }
  }
  if (r.registry.empty() || r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") r.registry = "docker.io";

  std::string repo = lower(name);
  size_t start = 0;
  for (;;) {
    size_t next = repo.find('/', start);
    std::string_view comp = std::string_view(repo).substr(start, next == std::string::npos ? std::string::npos : next - start);
    if (!valid_component(comp)) bad(text, "invalid repository component \"" + std::string(comp) + "\"");
    if (next == std::string::npos) break;
    start = next + 1;
  }
  if (repo.size() > 255) bad(text, "repository name longer than 255 characters");
  if (r.registry == "docker.io" && repo.find('/') == std::string::npos) repo = "library/" + repo;
  r.repository = std::move(repo);
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string Reference::api_host() const { return registry == "docker.io" ? "registry-1.docker.io" : registry; }

std::string Reference::scheme() const {
  std::string h = host_only(registry);
  return (h == "localhost" || h == "127.0.0.1" || h == "[::1]") ? "http" : "https";
}

std::string Reference::str() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

}  // namespace banger::image
