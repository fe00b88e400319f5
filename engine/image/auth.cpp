#include "engine/image/auth.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/core/base64.hpp"
#include "engine/core/error.hpp"

namespace banger::image {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

// "https://index.docker.io/v1/" -> "index.docker.io"
std::string key_host(std::string k) {
  if (auto p = k.find("://"); p != std::string::npos) k = k.substr(p + 3);
  if (auto p = k.find('/'); p != std::string::npos) k = k.substr(0, p);
  return lower(k);
}

}  // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t s = i;
    while (i < h.size() && tchar(h[i])) ++i;
    return std::string(h.substr(s, i - s));
  };
  while (i < h.size()) {
    skip_ws();
    if (i < h.size() && h[i] == ',') {
      ++i;
      continue;
    }
    std::string word = token();
    if (word.empty()) break;  // garbage: stop with what we have
    skip_ws();
    if (i < h.size() && h[i] == '=' && !out.empty()) {
      // key=value of the current challenge
      ++i;
      skip_ws();
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;  // closing quote
      } else {
        size_t s = i;
        while (i < h.size() && h[i] != ',' && h[i] != ' ' && h[i] != '\t') ++i;
        value = std::string(h.substr(s, i - s));
      }
      out.back().params[lower(word)] = value;
    } else {
      out.push_back({lower(word), {}});
    }
  }
  return out;
}

std::optional<Credentials> docker_credentials(const std::string& registry, const std::string& config_dir) {
  std::string dir = config_dir;
  if (dir.empty()) {
    if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) {
      dir = d;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      dir = std::string(home) + "/.docker";
    } else {
      return std::nullopt;
    }
  }
  std::string path = dir + "/config.json";
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error("EINVAL", path + ": not a JSON object");
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return std::nullopt;

  std::string want = lower(registry);
  bool hub = want == "docker.io";
  for (auto& [key, entry] : auths->items()) {
    std::string h = key_host(key);
    bool match = h == want || (hub && (h == "index.docker.io" || h == "registry-1.docker.io" || h == "docker.io"));
    if (!match || !entry.is_object()) continue;
    if (auto a = entry.find("auth"); a != entry.end() && a->is_string() && !a->get<std::string>().empty()) {
      std::string plain;
      try {
        plain = base64_decode(a->get<std::string>());
      } catch (const Error&) {
        throw Error("EINVAL", path + ": auths." + key + ".auth is not valid base64");
      }
      auto colon = plain.find(':');
      if (colon == std::string::npos) throw Error("EINVAL", path + ": auths." + key + ".auth is not base64 of user:password");
      return Credentials{plain.substr(0, colon), plain.substr(colon + 1)};
    }
    auto u = entry.find("username"), p = entry.find("password");
    if (u != entry.end() && p != entry.end() && u->is_string() && p->is_string())
      return Credentials{u->get<std::string>(), p->get<std::string>()};
  }
  return std::nullopt;
}

}  // namespace banger::image
