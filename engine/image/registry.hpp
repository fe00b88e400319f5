#pragma once
// A client for the OCI distribution API (docker registry v2) on libcurl:
// manifests (resolving an index to one platform), auth (bearer tokens and
// basic credentials from docker's config.json), and the requests the blob
// cache needs to download layers. Every manifest is verified against the
// digest it was asked for (or the one the registry claims).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/image/reference.hpp"

namespace banger::image {

namespace media {
inline constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media

struct Descriptor {
  std::string digest;  // validated sha256:<hex>
  std::uint64_t size = 0;
  std::string media_type;
};

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;  // empty: any
  std::string str() const { return os + "/" + architecture + (variant.empty() ? "" : "/" + variant); }
};
// "linux/amd64", "linux/arm64/v8"; throws EINVAL.
Platform parse_platform(std::string_view text);

struct Resolved {
  Reference ref;
  std::string digest;        // of the platform manifest
  std::string index_digest;  // of the index it was picked from, if any
  std::string media_type;    // of the manifest
  std::string manifest;      // its exact bytes (they hash to digest)
  Descriptor config;
  std::vector<Descriptor> layers;
};

// One blob download, as the cache performs it.
struct BlobRequest {
  std::string digest;
  std::uint64_t size = 0;
  std::string url;
  std::vector<std::string> headers;  // "Authorization: Bearer ..."
};

struct ClientOptions {
  std::string docker_config_dir;  // empty: $DOCKER_CONFIG, else ~/.docker
  long connect_timeout_s = 30;
  long request_timeout_s = 120;  // for manifests and tokens, not blobs
  long low_speed_time_s = 60;    // abort when under 1 byte/s for this long
};

class Client {
 public:
  explicit Client(Reference ref, ClientOptions opts = {});

  // Fetches the manifest for ref (picking `platform` from an index) and
  // parses config and layers. Errors: ENOENT (unknown image or tag), EACCES
  // (denied), ENOTSUP (schema 1, unknown media type), EDIGEST, EFETCH.
  Resolved resolve(const Platform& platform = {});

  // Authenticates up front (GET /v2/), so blob requests carry credentials.
  void prepare();
  BlobRequest blob_request(const Descriptor& d) const;

  const Reference& reference() const { return ref_; }
  // The Authorization header value in use ("" when anonymous).
  const std::string& authorization() const { return auth_; }

  struct Response {
    long status = 0;
    std::string body;
    std::string content_type;
    std::string docker_digest;
    std::string www_authenticate;
    std::string location;
  };

  // Tokens are asked for pulling and pushing (`repository:<repo>:pull,push`,
  // whatever scope a challenge names): what `image push` needs.
  void want_push() { push_ = true; }
  const ClientOptions& options() const { return opts_; }
  // After a 401: gets credentials as its challenge asks (a bearer token, or
  // basic credentials from docker config), so the request can be repeated.
  void authenticate(const Response& unauthorized);

 private:
  Response get(const std::string& url, const std::string& accept, std::uint64_t max_bytes);
  Response get_authed(const std::string& url, const std::string& accept, std::uint64_t max_bytes);
  std::string fetch_manifest(const std::string& ref, const std::string& want_digest, std::string& media_type,
                             std::string& digest);

  Reference ref_;
  ClientOptions opts_;
  std::string auth_;
  bool push_ = false;
};

// The registry's error document, as "CODE: message; ..." (empty when none).
std::string registry_errors(const std::string& body, std::string* first_code = nullptr);
// libcurl header callback filling the Client::Response its userdata points to.
size_t on_response_header(char* p, size_t size, size_t n, void* response);

// Parses an image manifest (OCI or docker v2) into config and layers.
void parse_manifest(std::string_view body, Resolved& out);

}  // namespace banger::image
