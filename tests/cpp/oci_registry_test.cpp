// The OCI client and blob cache against a real registry (Debian's
// docker-registry on 127.0.0.1, image built by tests/fixtures/make-oci-image.sh)
// and against a tiny in-process server that lies, trickles or demands auth.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/sha256.hpp"
#include "engine/ext4/filesystem.hpp"
#include "engine/ext4/populate.hpp"
#include "engine/core/base64.hpp"
#include "engine/image/auth.hpp"
#include "engine/image/cache.hpp"
#include "engine/image/registry.hpp"
#include "oci_test_server.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace banger::image;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return std::string(BANGER_TEST_SOURCE_DIR) + "/tests/fixtures/" + name; }

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A docker-registry with one pushed image (test/img:v1 and :multi).
struct Registry {
  test::TempDir dir;
  std::string host;
  std::map<std::string, std::string> info;  // manifest=, index=, config=
  std::vector<std::string> layers;
  explicit Registry(int big_mb = 0) {
    process::SpawnOptions o;
    o.argv = {fixture("registry.sh"), "start", dir / "reg"};
    auto r = process::run(o, {}, std::chrono::seconds(30));
    REQUIRE(r.status.shell_code() == 0);
    host = r.out.substr(0, r.out.find('\n'));
    REQUIRE(host.rfind("127.0.0.1:", 0) == 0);
    o.argv = {fixture("make-oci-image.sh"), dir / "img", host, "test/img", std::to_string(big_mb)};
    r = process::run(o, {}, std::chrono::seconds(120));
    INFO(r.err);
    REQUIRE(r.status.shell_code() == 0);
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) {
      auto eq = l.find('=');
      if (eq == std::string::npos) continue;
      if (l.substr(0, eq) == "layer") {
        layers.push_back(l.substr(eq + 1));
      } else {
        info[l.substr(0, eq)] = l.substr(eq + 1);
      }
    }
  }
  ~Registry() {
    process::SpawnOptions o;
    o.argv = {fixture("registry.sh"), "stop", dir / "reg"};
    try {
      process::run(o, {}, std::chrono::seconds(30));
    } catch (...) {
    }
  }
  // Blob GETs the registry has served so far (its access log).
  size_t blob_gets() const {
    std::istringstream log(slurp(dir / "reg/registry.log"));
    size_t n = 0;
    for (std::string l; std::getline(log, l);) n += l.find("\"GET /v2/test/img/blobs/") != std::string::npos;
    return n;
  }
};

std::vector<BlobRequest> requests(Client& c, const Resolved& r) {
  std::vector<BlobRequest> out;
  for (auto& l : r.layers) out.push_back(c.blob_request(l));
  return out;
}

}  // namespace

TEST_CASE("oci pull from a real registry: resolve, fetch, cache, re-pull", "[oci]") {
  Registry reg;
  test::TempDir t;
  BlobCache cache(t / "cache");
  CHECK(slurp(t / "cache/oci-layout").find("imageLayoutVersion") != std::string::npos);

  Client c(parse_reference(reg.host + "/test/img:v1"));
  Resolved r = c.resolve();
  CHECK(r.digest == reg.info["manifest"]);
  CHECK(r.index_digest.empty());
  CHECK(r.config.digest == reg.info["config"]);
  REQUIRE(r.layers.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(r.layers[i].digest == reg.layers[i]);
    CHECK(r.layers[i].media_type == "application/vnd.oci.image.layer.v1.tar+gzip");
  }
  CHECK("sha256:" + sha256_hex(r.manifest) == r.digest);

  std::vector<FetchProgress> seen;
  FetchResult f = fetch_blobs(cache, requests(c, r), {}, [&](const FetchProgress& p) { seen.push_back(p); });
  REQUIRE(f.paths.size() == 3);
  CHECK(f.downloaded_blobs == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(f.paths[i] == t / ("cache/blobs/sha256/" + reg.layers[i].substr(7)));
    CHECK("sha256:" + sha256_file_hex(f.paths[i]) == reg.layers[i]);
  }
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().done == seen.back().total);
  CHECK(seen.back().blobs.size() == 3);
  size_t gets = reg.blob_gets();
  CHECK(gets == 3);
  // No temporaries left behind.
  for (auto& e : fs::directory_iterator(t / "cache/blobs/sha256")) CHECK(e.path().filename().string().rfind(".tmp-", 0) != 0);

  // A re-pull downloads nothing: the registry sees no blob request.
  FetchResult again = fetch_blobs(cache, requests(c, r));
  CHECK(again.downloaded_blobs == 0);
  CHECK(again.paths == f.paths);
  CHECK(reg.blob_gets() == gets);

  // A blob corrupted in place (same size) is detected and fetched again.
  {
    std::string p = f.paths[1];
    std::string data = slurp(p);
    data[data.size() / 2] ^= 0x55;
    ::chmod(p.c_str(), 0644);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }
  CHECK_FALSE(cache.verify(reg.layers[1]));
  FetchResult healed = fetch_blobs(cache, requests(c, r));
  CHECK(healed.downloaded_blobs == 1);
  CHECK(cache.verify(reg.layers[1]));
  CHECK(reg.blob_gets() == gets + 1);

  // Pinned by digest, through the index, per platform.
  Client pinned(parse_reference(reg.host + "/test/img@" + reg.info["manifest"]));
  CHECK(pinned.resolve().layers.size() == 3);
  Client multi(parse_reference(reg.host + "/test/img:multi"));
  Resolved amd = multi.resolve();
  CHECK(amd.digest == reg.info["manifest"]);
  CHECK(amd.index_digest == reg.info["index"]);
  Resolved arm = multi.resolve(parse_platform("linux/arm64"));
  CHECK(arm.digest != amd.digest);
  CHECK(arm.layers.size() == 1);
  CHECK(multi.resolve(parse_platform("linux/arm64/v8")).digest == arm.digest);
  std::string e = test::error_of([&] { multi.resolve(parse_platform("linux/s390x")); });
  CHECK_THAT(e, Catch::StartsWith("ENOENT") && Catch::Contains("linux/s390x") && Catch::Contains("linux/amd64") &&
                    Catch::Contains("linux/arm64/v8"));

  // Missing things are ENOENT naming the image.
  e = test::error_of([&] { Client(parse_reference(reg.host + "/test/img:nope")).resolve(); });
  CHECK_THAT(e, Catch::StartsWith("ENOENT") && Catch::Contains("test/img:nope not found") && Catch::Contains("MANIFEST_UNKNOWN"));
  e = test::error_of([&] { Client(parse_reference(reg.host + "/test/absent:v1")).resolve(); });
  CHECK_THAT(e, Catch::StartsWith("ENOENT"));
  e = test::error_of([&] { Client(parse_reference(reg.host + "/test/img@sha256:" + std::string(64, '0'))).resolve(); });
  CHECK_THAT(e, Catch::StartsWith("ENOENT"));

  // Prune: dry run counts, the real one empties; a later pull refills.
  PruneResult dry = prune(t / "cache", true);
  CHECK(dry.blobs == 3);
  CHECK(dry.bytes >= r.layers[0].size + r.layers[1].size + r.layers[2].size);
  CHECK(fs::exists(f.paths[0]));
  PruneResult real = prune(t / "cache", false);
  CHECK(real.blobs == 3);
  CHECK_FALSE(fs::exists(f.paths[0]));
  CHECK(fs::exists(t / "cache/oci-layout"));
  for (auto& d : fs::directory_iterator(t.path())) CHECK(d.path().filename().string().find(".pruning-") == std::string::npos);
  CHECK(prune(t / "cache", true).blobs == 0);
}

TEST_CASE("oci stream a layer while it downloads", "[oci]") {
  Registry reg(8);  // a fourth layer of 8 MiB random data
  test::TempDir t;
  BlobCache cache(t / "cache");
  Client c(parse_reference(reg.host + "/test/img:v1"));
  Resolved r = c.resolve();
  REQUIRE(r.layers.size() == 4);
  Pull pull(cache, requests(c, r), {});
  for (size_t i = 0; i < r.layers.size(); ++i) {
    auto src = pull.open(i);
    Sha256 h;
    std::uint64_t n = 0;
    for (auto chunk = src->read(); !chunk.empty(); chunk = src->read()) {
      h.update(chunk.data(), chunk.size());
      n += chunk.size();
    }
    CHECK(n == r.layers[i].size);
    CHECK("sha256:" + h.hex() == r.layers[i].digest);
  }
  FetchResult f = pull.wait();
  CHECK(f.paths.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(cache.verify(r.layers[i].digest));
}

namespace {

// Serves one image: a manifest with one layer `served` whose descriptor
// claims `blob` (so they differ when the server lies).
struct FakeImage {
  std::string blob, config = "{}";
  std::string manifest;
  std::string blob_digest() const { return "sha256:" + sha256_hex(blob); }
  std::string manifest_digest() const { return "sha256:" + sha256_hex(manifest); }
  explicit FakeImage(std::string b) : blob(std::move(b)) {
    manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
               sha256_hex(config) + R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
               blob_digest() + R"(","size":)" + std::to_string(blob.size()) + "}]}";
  }
  test::HttpResponse serve(const test::HttpRequest& q, const std::string& served, size_t chunk = 0, int delay = 0) const {
    if (q.path.find("/manifests/") != std::string::npos)
      return {200, {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}}, manifest, 0, 0};
    if (q.path.find("/blobs/" + blob_digest()) != std::string::npos) return {200, {}, served, chunk, delay};
    return {404, {{"Content-Type", "application/json"}}, R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]})", 0, 0};
  }
};

std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245 + 12345;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

}  // namespace

TEST_CASE("oci a blob served with the wrong content is rejected and never cached", "[oci]") {
  FakeImage img(random_bytes(200000));
  std::string lie = img.blob;
  lie[1000] ^= 1;
  test::HttpServer srv([&](const test::HttpRequest& q) { return img.serve(q, lie); });
  test::TempDir t;
  BlobCache cache(t / "cache");
  Client c(parse_reference(srv.host() + "/x/y:v1"));
  Resolved r = c.resolve();
  std::string e = test::error_of([&] { fetch_blobs(cache, requests(c, r)); });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST") && Catch::Contains(img.blob_digest()));
  CHECK_FALSE(cache.has(img.blob_digest(), img.blob.size()));
  CHECK(fs::is_empty(t / "cache/blobs/sha256"));

  // Too long is cut off; too short is rejected.
  e = test::error_of([&] {
    test::HttpServer s2([&](const test::HttpRequest& q) { return img.serve(q, img.blob + "extra"); });
    Client c2(parse_reference(s2.host() + "/x/y:v1"));
    fetch_blobs(cache, requests(c2, c2.resolve()));
  });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST") && Catch::Contains("larger"));
  e = test::error_of([&] {
    test::HttpServer s3([&](const test::HttpRequest& q) { return img.serve(q, img.blob.substr(10)); });
    Client c3(parse_reference(s3.host() + "/x/y:v1"));
    fetch_blobs(cache, requests(c3, c3.resolve()));
  });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST"));
  CHECK(fs::is_empty(t / "cache/blobs/sha256"));

  // A manifest that does not hash to the pinned digest.
  Client pinned(parse_reference(srv.host() + "/x/y@sha256:" + std::string(64, 'a')));
  e = test::error_of([&] { pinned.resolve(); });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST") && Catch::Contains("manifest"));

  // Streaming consumers see the failure at the end of the stream.
  Pull p(cache, requests(c, r));
  auto src = p.open(0);
  e = test::error_of([&] {
    while (!src->read().empty()) {
    }
  });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST"));
}

TEST_CASE("oci a pull survives a concurrent prune", "[oci]") {
  FakeImage img(random_bytes(1 << 20));
  // Trickled: 64 KiB every 20 ms, so the prune lands mid-download.
  test::HttpServer srv([&](const test::HttpRequest& q) { return img.serve(q, img.blob, 64 << 10, 20); });
  test::TempDir t;
  BlobCache cache(t / "cache");
  Client c(parse_reference(srv.host() + "/x/y:v1"));
  Resolved r = c.resolve();
  Pull p(cache, requests(c, r));
  auto src = p.open(0);
  auto first = src->read();  // the download is under way
  REQUIRE_FALSE(first.empty());
  PruneResult pr = prune(t / "cache", false);
  CHECK(pr.blobs == 0);
  FetchResult f = p.wait();
  REQUIRE(f.paths.size() == 1);
  CHECK(cache.verify(img.blob_digest()));
  CHECK(slurp(f.paths[0]) == img.blob);
  // The stream opened before the prune still ends verified.
  std::uint64_t n = first.size();
  for (auto chunk = src->read(); !chunk.empty(); chunk = src->read()) n += chunk.size();
  CHECK(n == img.blob.size());
}

TEST_CASE("oci bearer token auth with docker config credentials", "[oci]") {
  FakeImage img(random_bytes(5000));
  test::TempDir t;
  std::ofstream(t / "config.json") << R"({"auths":{"PLACEHOLDER":{"auth":")" + base64_encode("alice:wonder,land") + R"("}}})";
  std::string host;
  test::HttpServer srv([&](const test::HttpRequest& q) -> test::HttpResponse {
    if (q.path.rfind("/token?", 0) == 0) {
      if (q.authorization != "Basic " + base64_encode("alice:wonder,land")) return {401, {}, "no", 0, 0};
      if (q.path.find("scope=repository%3Ax%2Fy%3Apull") == std::string::npos) return {403, {}, "bad scope", 0, 0};
      if (q.path.find("service=reg%2Cistry") == std::string::npos) return {403, {}, "bad service", 0, 0};
      return {200, {{"Content-Type", "application/json"}}, R"({"access_token":"tok-123"})", 0, 0};
    }
    if (q.authorization != "Bearer tok-123")
      return {401,
              {{"WWW-Authenticate", "Bearer realm=\"http://" + host + "/token\",service=\"reg,istry\",scope=\"repository:x/y:pull\""}},
              R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
              0,
              0};
    return img.serve(q, img.blob);
  });
  host = srv.host();
  {
    std::string cfg = slurp(t / "config.json");
    cfg.replace(cfg.find("PLACEHOLDER"), 11, host);
    std::ofstream(t / "config.json", std::ios::trunc) << cfg;
  }
  ClientOptions o;
  o.docker_config_dir = t.path();
  Client c(parse_reference(host + "/x/y:v1"), o);
  Resolved r = c.resolve();
  CHECK(r.layers.size() == 1);
  CHECK(c.authorization() == "Bearer tok-123");
  BlobCache cache(t / "cache");
  FetchResult f = fetch_blobs(cache, requests(c, r));
  CHECK(slurp(f.paths[0]) == img.blob);
  CHECK(srv.count("/token") == 1);

  // Without credentials the token endpoint refuses: EACCES.
  ClientOptions none;
  none.docker_config_dir = t / "empty";
  std::string e = test::error_of([&] { Client(parse_reference(host + "/x/y:v1"), none).resolve(); });
  CHECK_THAT(e, Catch::StartsWith("EACCES") && Catch::Contains("token"));
}

TEST_CASE("oci basic auth from docker config", "[oci]") {
  FakeImage img(random_bytes(3000));
  test::TempDir t;
  std::string want = "Basic " + base64_encode("bob:pw");
  test::HttpServer srv([&](const test::HttpRequest& q) -> test::HttpResponse {
    if (q.authorization != want) return {401, {{"WWW-Authenticate", "Basic realm=\"registry\""}}, "", 0, 0};
    return img.serve(q, img.blob);
  });
  std::ofstream(t / "config.json") << R"({"auths":{"http://)" + srv.host() + R"(/v2/":{"auth":")" + base64_encode("bob:pw") + R"("}}})";
  ClientOptions o;
  o.docker_config_dir = t.path();
  Client c(parse_reference(srv.host() + "/x/y:v1"), o);
  Resolved r = c.resolve();
  BlobCache cache(t / "cache");
  CHECK(slurp(fetch_blobs(cache, requests(c, r)).paths[0]) == img.blob);

  ClientOptions none;
  none.docker_config_dir = t / "empty";
  std::string e = test::error_of([&] { Client(parse_reference(srv.host() + "/x/y:v1"), none).resolve(); });
  CHECK_THAT(e, Catch::StartsWith("EACCES") && Catch::Contains("requires credentials"));
}

TEST_CASE("oci cache refuses symlinks planted in it", "[oci]") {
  FakeImage img(random_bytes(4096));
  test::HttpServer srv([&](const test::HttpRequest& q) { return img.serve(q, img.blob); });
  test::TempDir t;
  // A symlink where the blob goes, pointing at a file of the right size:
  // it is not taken as the cached blob, and the file behind it is untouched.
  std::string victim = t / "victim";
  std::string original(img.blob.size(), 'v');
  std::ofstream(victim, std::ios::binary) << original;
  BlobCache cache(t / "cache");
  std::string p = cache.path(img.blob_digest());
  fs::create_symlink(victim, p);
  CHECK_FALSE(cache.has(img.blob_digest(), img.blob.size()));
  Client c(parse_reference(srv.host() + "/x/y:v1"));
  FetchResult f = fetch_blobs(cache, requests(c, c.resolve()));
  CHECK_FALSE(fs::is_symlink(p));
  CHECK(slurp(p) == img.blob);
  CHECK(slurp(victim) == original);

  // The cache directory itself being a symlink is refused.
  fs::create_directory(t / "elsewhere");
  fs::create_symlink(t / "elsewhere", t / "linked");
  CHECK_THAT(test::error_of([&] { BlobCache bad(t / "linked"); }), Catch::StartsWith("EUNSAFE"));
  CHECK_THAT(test::error_of([&] { prune(t / "linked", false); }), Catch::StartsWith("EUNSAFE"));
  CHECK(fs::exists(t / "elsewhere"));

  // Digests are validated before they become file names.
  CHECK_THAT(test::error_of([&] { cache.path("sha256:../../etc/passwd"); }), Catch::StartsWith("EINVAL"));
  BlobRequest evil{"sha256:" + std::string(63, 'a') + "/", 1, "http://" + srv.host() + "/x", {}};
  CHECK_THAT(test::error_of([&] { fetch_blobs(cache, {evil}); }), Catch::StartsWith("EINVAL"));
}

TEST_CASE("oci a layer written into ext4 while it downloads fails on a digest mismatch", "[oci]") {
  test::TempDir t;
  process::SpawnOptions o;
  o.argv = {"sh", "-c", "mkdir -p \"$1/etc\" && echo hi > \"$1/etc/hello\" && tar -C \"$1\" -cf - . | gzip -n", "sh", t / "tree"};
  auto tar = process::run(o);
  REQUIRE(tar.status.shell_code() == 0);
  FakeImage img(tar.out);
  // The lie is in the gzip header's timestamp: the layer still inflates and
  // unpacks cleanly, only its digest is wrong, which the stream reports at
  // its end.
  std::string lie = img.blob;
  lie[5] ^= 1;
  BlobCache cache(t / "cache");
  for (const std::string* served : {&img.blob, &lie}) {
    test::HttpServer srv([&](const test::HttpRequest& q) { return img.serve(q, *served, 7, 1); });
    Client c(parse_reference(srv.host() + "/x/y:v1"));
    Pull p(cache, requests(c, c.resolve()));
    ext4::mkfs(t / "root.ext4", 16 << 20);
    auto fs = ext4::Filesystem::open(t / "root.ext4", true);
    auto src = p.open(0);
    std::string e = test::error_of([&] { ext4::apply_layer(*fs, *src); });
    if (served == &img.blob) {
      CHECK(e == "no error");
      CHECK(fs->read("/etc/hello") == "hi\n");
      CHECK(p.wait().paths.size() == 1);
      ::unlink(cache.path(img.blob_digest()).c_str());  // the lying round must download again
    } else {
      CHECK_THAT(e, Catch::StartsWith("EDIGEST"));
      CHECK_FALSE(cache.has(img.blob_digest(), img.blob.size()));
    }
  }
}

TEST_CASE("oci Ctrl-C while a layer streams into ext4 stops everything and leaves no temporaries", "[oci]") {
  test::TempDir t;
  process::SpawnOptions o;
  o.argv = {"sh", "-c", "mkdir -p \"$1\" && head -c 2000000 /dev/urandom > \"$1/noise\" && tar -C \"$1\" -cf - . | gzip -n -1",
            "sh", t / "tree"};
  auto tar = process::run(o);
  REQUIRE(tar.status.shell_code() == 0);
  FakeImage img(tar.out);
  // Trickled (64 KiB every 20 ms), so the interrupt lands mid-layer.
  test::HttpServer srv([&](const test::HttpRequest& q) { return img.serve(q, img.blob, 64 << 10, 20); });
  BlobCache cache(t / "cache");
  Client c(parse_reference(srv.host() + "/x/y:v1"));
  ext4::mkfs(t / "root.ext4", 16 << 20);
  auto fs = ext4::Filesystem::open(t / "root.ext4", true);
  std::string e;
  {
    test::CancelReset reset;
    Pull p(cache, requests(c, c.resolve()));
    auto src = p.open(0);
    // Ctrl-C once part of the layer has been served (so mid-layer: it is
    // 2 MB of noise trickled 64 KiB at a time). A jthread joins even when an
    // assertion ends the case.
    std::jthread ctrl_c([&](std::stop_token stop) {
      while (!stop.stop_requested() && srv.bytes_sent() < (256u << 10)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      if (!stop.stop_requested()) cancel::request();
    });
    e = test::error_of([&] { ext4::apply_layer(*fs, *src); });
    ctrl_c.request_stop();
    ctrl_c.join();
  }
  CHECK_THAT(e, Catch::StartsWith("ECANCELED"));
  CHECK(fs::is_empty(t / "cache/blobs/sha256"));
  fs->close();
}
