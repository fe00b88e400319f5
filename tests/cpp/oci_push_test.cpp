// Registry pushes (engine/image/push) against the in-process test server:
// the order of requests, the bearer token's scope, what each upload carries,
// a blob the registry has already, and a refused push.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"
#include "engine/image/auth.hpp"
#include "engine/image/push.hpp"
#include "engine/image/reference.hpp"
#include "oci_test_server.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace banger::image;

namespace {

// A registry demanding a bearer token; the challenge names only pull, so a
// push must ask for push itself. Stores what is uploaded.
struct TokenRegistry {
  std::string host;
  std::string granted_scope = "repository%3Ax%2Fy%3Apull%2Cpush";
  std::map<std::string, std::string> blobs;  // digest -> bytes
  std::string manifest;
  test::HttpServer srv{[this](const test::HttpRequest& q) { return handle(q); }};

  TokenRegistry() { host = srv.host(); }

  test::HttpResponse handle(const test::HttpRequest& q) {
    if (q.path.rfind("/token?", 0) == 0) {
      if (q.path.find("scope=" + granted_scope) == std::string::npos) return {403, {}, "scope refused", 0, 0};
      return {200, {{"Content-Type", "application/json"}}, R"({"token":"push-tok"})", 0, 0};
    }
    if (q.authorization != "Bearer push-tok")
      return {401, {{"WWW-Authenticate", "Bearer realm=\"http://" + host + "/token\",service=\"reg\",scope=\"repository:x/y:pull\""}},
              R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})", 0, 0};
    const std::string blobs_prefix = "/v2/x/y/blobs/";
    if (q.method == "HEAD" && q.path.rfind(blobs_prefix, 0) == 0)
      return {blobs.count(q.path.substr(blobs_prefix.size())) ? 200 : 404, {}, "", 0, 0};
    if (q.method == "POST" && q.path == "/v2/x/y/blobs/uploads/")
      return {202, {{"Location", "/v2/x/y/blobs/uploads/u1?_state=abc"}}, "", 0, 0};
    if (q.method == "PUT" && q.path.rfind("/v2/x/y/blobs/uploads/u1?_state=abc&digest=", 0) == 0) {
      std::string digest = q.path.substr(q.path.find("digest=") + 7);
      if ("sha256:" + sha256_hex(q.body) != digest) return {400, {}, R"({"errors":[{"code":"DIGEST_INVALID"}]})", 0, 0};
      blobs[digest] = q.body;
      return {201, {}, "", 0, 0};
    }
    if (q.method == "PUT" && q.path == "/v2/x/y/manifests/v1") {
      manifest = q.body;
      return {201, {{"Docker-Content-Digest", "sha256:" + sha256_hex(q.body)}}, "", 0, 0};
    }
    return {404, {}, "", 0, 0};
  }
};

// No credentials from the machine's own docker config.
Client client(const test::TempDir& t, const std::string& ref) {
  ClientOptions o;
  o.docker_config_dir = t / "no-docker-config";
  return Client(parse_reference(ref), o);
}

PushLayer layer_file(const test::TempDir& t, const std::string& bytes) {
  std::ofstream(t / "layer.tar.gz", std::ios::binary) << bytes;
  return {t / "layer.tar.gz", "sha256:" + sha256_hex(bytes), bytes.size()};
}

}  // namespace

TEST_CASE("oci push: a token for pull and push, then HEAD, POST and PUT ?digest= of layer and config, then the manifest", "[oci]") {
  TokenRegistry reg;
  test::TempDir t;
  std::string bytes(300000, 'z');
  PushLayer layer = layer_file(t, bytes);
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"diff_ids":["sha256:00"],"type":"layers"}})";
  Client c = client(t, reg.host + "/x/y:v1");
  std::uint64_t last_sent = 0, last_total = 0;
  PushResult r = push_image(c, layer, config, [&](std::uint64_t sent, std::uint64_t total) {
    last_sent = sent;
    last_total = total;
  });
  CHECK(r.layer_uploaded);
  CHECK(r.config_uploaded);
  CHECK(r.uploaded_bytes == bytes.size() + config.size());
  CHECK(last_sent == bytes.size());
  CHECK(last_total == bytes.size());
  CHECK(reg.blobs[layer.digest] == bytes);
  CHECK(reg.blobs[r.config_digest] == config);
  CHECK(r.digest == "sha256:" + sha256_hex(reg.manifest));
  auto m = nlohmann::json::parse(reg.manifest);
  CHECK(m["mediaType"] == "application/vnd.oci.image.manifest.v1+json");
  CHECK(m["config"]["digest"] == r.config_digest);
  CHECK(m["layers"][0]["digest"] == layer.digest);
  CHECK(m["layers"][0]["size"] == bytes.size());
  CHECK(reg.srv.count("/token") == 1);

  // Again: both blobs are there, only HEADs and the manifest go out.
  size_t posts = reg.srv.count("/v2/x/y/blobs/uploads/");
  Client again = client(t, reg.host + "/x/y:v1");
  PushResult r2 = push_image(again, layer, config);
  CHECK_FALSE(r2.layer_uploaded);
  CHECK_FALSE(r2.config_uploaded);
  CHECK(r2.digest == r.digest);
  CHECK(reg.srv.count("/v2/x/y/blobs/uploads/") == posts);
}

TEST_CASE("oci push: refused scope is EACCES, a changed layer file is EDIGEST, a digest reference is EINVAL", "[oci]") {
  test::TempDir t;
  PushLayer layer = layer_file(t, "abc");
  {
    TokenRegistry reg;
    reg.granted_scope = "nothing-is-granted";
    Client c = client(t, reg.host + "/x/y:v1");
    CHECK_THAT(test::error_code_of([&] { push_image(c, layer, "{}"); }), Catch::Equals("EACCES"));
    CHECK(reg.blobs.empty());
  }
  {
    TokenRegistry reg;
    PushLayer lied = layer;
    lied.digest = "sha256:" + sha256_hex("abd");  // what the file held when its digest was taken
    Client c = client(t, reg.host + "/x/y:v1");
    CHECK(test::error_code_of([&] { push_image(c, lied, "{}"); }) == "EDIGEST");
    CHECK(reg.manifest.empty());
  }
  Client pinned = client(t, "127.0.0.1:9/x/y@sha256:" + std::string(64, 'a'));
  CHECK(test::error_code_of([&] { push_image(pinned, layer, "{}"); }) == "EINVAL");
}
