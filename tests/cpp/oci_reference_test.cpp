// Image reference grammar, WWW-Authenticate parsing and docker config
// credentials: pure functions, table-driven.
#include <catch2/catch.hpp>

#include <fstream>

#include "engine/core/error.hpp"
#include "engine/core/base64.hpp"
#include "engine/image/auth.hpp"
#include "engine/image/reference.hpp"
#include "engine/image/registry.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace banger::image;

namespace {
const std::string kHex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
}

TEST_CASE("oci reference: valid references normalise like docker", "[oci]") {
  struct Row {
    std::string in, registry, repo, tag, digest, api, scheme;
  };
  const std::vector<Row> rows = {
      {"debian", "docker.io", "library/debian", "latest", "", "registry-1.docker.io", "https"},
      {"debian:bookworm", "docker.io", "library/debian", "bookworm", "", "registry-1.docker.io", "https"},
      {"library/debian", "docker.io", "library/debian", "latest", "", "registry-1.docker.io", "https"},
      {"docker.io/library/debian:bookworm", "docker.io", "library/debian", "bookworm", "", "registry-1.docker.io", "https"},
      {"index.docker.io/debian", "docker.io", "library/debian", "latest", "", "registry-1.docker.io", "https"},
      {"someone/tool:1.2", "docker.io", "someone/tool", "1.2", "", "registry-1.docker.io", "https"},
      {"ghcr.io/org/img:tag", "ghcr.io", "org/img", "tag", "", "ghcr.io", "https"},
      {"GHCR.io/Org/Img:Tag", "ghcr.io", "org/img", "Tag", "", "ghcr.io", "https"},
      {"localhost:5000/x/y:t", "localhost:5000", "x/y", "t", "", "localhost:5000", "http"},
      {"localhost/x", "localhost", "x", "latest", "", "localhost", "http"},
      {"127.0.0.1:5000/img@sha256:" + kHex, "127.0.0.1:5000", "img", "", "sha256:" + kHex, "127.0.0.1:5000", "http"},
      {"img:tag@sha256:" + kHex, "docker.io", "library/img", "tag", "sha256:" + kHex, "registry-1.docker.io", "https"},
      {"[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", "", "[::1]:5000", "http"},
      {"quay.io/a/b/c/d:v1.0-rc_1", "quay.io", "a/b/c/d", "v1.0-rc_1", "", "quay.io", "https"},
      {"my-registry.example.com:443/a__b/c.d/e--f", "my-registry.example.com:443", "a__b/c.d/e--f", "latest", "",
       "my-registry.example.com:443", "https"},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    Reference ref = parse_reference(r.in);
    CHECK(ref.registry == r.registry);
    CHECK(ref.repository == r.repo);
    CHECK(ref.tag == r.tag);
    CHECK(ref.digest == r.digest);
    CHECK(ref.api_host() == r.api);
    CHECK(ref.scheme() == r.scheme);
    CHECK(ref.manifest_ref() == (r.digest.empty() ? r.tag : r.digest));
    // The canonical form parses back to the same reference.
    Reference again = parse_reference(ref.str());
    CHECK(again.str() == ref.str());
  }
}

TEST_CASE("oci reference: invalid references are EINVAL with the reason", "[oci]") {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"", "empty"},
      {"deb ian", "whitespace"},
      {"debian:", "invalid tag"},
      {"debian:-x", "invalid tag"},
      {"debian:" + std::string(129, 'a'), "invalid tag"},
      {"debian@sha256:abc", "64 lowercase hex"},
      {"debian@sha256:" + std::string(64, 'A'), "64 lowercase hex"},
      {"debian@md5:" + kHex, "only sha256"},
      {"-debian", "invalid repository component"},
      {"deb..ian", "invalid repository component"},
      {"a//b", "invalid repository component"},
      {"../etc/passwd", "invalid registry host"},
      {"x/../etc", "invalid repository component"},
      {"localhost:99999/x", "invalid registry host"},
      {"bad_host.io:1/x", "invalid registry host"},
      {"ghcr.io/", "invalid repository component"},
      {"deb\nian", "control"},
  };
  for (const auto& [in, why] : rows) {
    INFO(in);
    try {
      parse_reference(in);
      FAIL("accepted " << in);
    } catch (const Error& e) {
      CHECK(e.code() == "EINVAL");
      CHECK_THAT(e.what(), Catch::Contains(why));
    }
  }
}

TEST_CASE("oci platform strings", "[oci]") {
  CHECK(parse_platform("linux/amd64").str() == "linux/amd64");
  CHECK(parse_platform("linux/arm64/v8").variant == "v8");
  CHECK_THROWS_AS(parse_platform("linux"), Error);
  CHECK_THROWS_AS(parse_platform("linux/amd64/v1/x"), Error);
  CHECK_THROWS_AS(parse_platform("linux/../x"), Error);
}

TEST_CASE("oci WWW-Authenticate parsing keeps commas inside quotes", "[oci]") {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push repository:c:pull")");
  REQUIRE(c.size() == 1);
  CHECK(c[0].scheme == "bearer");
  CHECK(c[0].params["realm"] == "https://auth.example.com/token");
  CHECK(c[0].params["service"] == "registry.example.com");
  CHECK(c[0].params["scope"] == "repository:a/b:pull,push repository:c:pull");

  auto two = parse_www_authenticate(R"(Basic realm="a \"quoted\", realm", Bearer Realm=http://x/t , service="s")");
  REQUIRE(two.size() == 2);
  CHECK(two[0].scheme == "basic");
  CHECK(two[0].params["realm"] == "a \"quoted\", realm");
  CHECK(two[1].scheme == "bearer");
  CHECK(two[1].params["realm"] == "http://x/t");
  CHECK(two[1].params["service"] == "s");

  CHECK(parse_www_authenticate("").empty());
  CHECK_NOTHROW(parse_www_authenticate("Bearer realm=\"unterminated"));
}

TEST_CASE("oci base64 round trip", "[oci]") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "user:p@ss:word", std::string("\0\xff\x10", 3)}) {
    CHECK(base64_decode(base64_encode(s)) == s);
  }
  CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
  CHECK_THROWS_AS(base64_decode("abc"), Error);
}

TEST_CASE("oci docker config.json credentials", "[oci]") {
  test::TempDir t;
  std::ofstream(t / "config.json") << R"({"auths":{
    "https://index.docker.io/v1/":{"auth":")" + base64_encode("hubuser:hubpass") + R"("},
    "127.0.0.1:5000":{"auth":")" + base64_encode("me:s3cr:et") + R"("},
    "https://ghcr.io":{"username":"u","password":"p"},
    "broken.io":{"auth":"!!!"}}})";
  auto hub = docker_credentials("docker.io", t.path());
  REQUIRE(hub);
  CHECK(hub->user == "hubuser");
  CHECK(hub->password == "hubpass");
  auto local = docker_credentials("127.0.0.1:5000", t.path());
  REQUIRE(local);
  CHECK(local->user == "me");
  CHECK(local->password == "s3cr:et");
  auto gh = docker_credentials("ghcr.io", t.path());
  REQUIRE(gh);
  CHECK(gh->user == "u");
  CHECK_FALSE(docker_credentials("quay.io", t.path()));
  CHECK_THROWS_AS(docker_credentials("broken.io", t.path()), Error);
  CHECK_FALSE(docker_credentials("docker.io", t / "nowhere"));

  // $DOCKER_CONFIG is honoured when no directory is given.
  int rc = test::in_child([&] {
    ::setenv("DOCKER_CONFIG", t.path().c_str(), 1);
    auto c = docker_credentials("127.0.0.1:5000");
    return c && c->user == "me" ? 0 : 1;
  });
  CHECK(rc == 0);
}
