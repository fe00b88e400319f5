#pragma once
// Registry authentication pieces: the WWW-Authenticate challenge a registry
// answers 401 with, and credentials from docker's config.json.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::image {

struct Challenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lower case: realm, service, scope
};

// Parses RFC 7235 challenges: `Bearer realm="https://a/token",service="x",scope="repository:a,b:pull"`.
// Quoted values may contain commas and backslash escapes; several challenges
// may share one header. Unparseable input yields what could be parsed.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

struct Credentials {
  std::string user;
  std::string password;
};

// Credentials for a registry ("docker.io", "ghcr.io", "127.0.0.1:5000") from
// <config_dir>/config.json, where config_dir defaults to $DOCKER_CONFIG, else
// ~/.docker. Reads `auths.<key>.auth` (base64 "user:pass"), falling back to
// `username`/`password`. Keys are matched with or without a scheme or path
// ("https://index.docker.io/v1/" for docker.io). A missing file: nullopt; a
// malformed one: banger::Error("EINVAL").
std::optional<Credentials> docker_credentials(const std::string& registry, const std::string& config_dir = {});

}  // namespace banger::image
