#pragma once
// Image references as users write them ("debian", "ghcr.io/org/img:tag",
// "127.0.0.1:5000/img@sha256:..."), normalised the way docker does:
// docker.io is the default registry, single-component docker.io names live
// under library/, the tag defaults to latest unless a digest pins the image.
#include <string>
#include <string_view>

namespace banger::image {

struct Reference {
  std::string registry;    // "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000"
  std::string repository;  // "library/debian"
  std::string tag;         // "latest" by default; empty only when a digest is given without one
  std::string digest;      // "sha256:<64 hex>" or empty

  // Host (and port) the registry API answers on: registry-1.docker.io for docker.io.
  std::string api_host() const;
  // http:// for loopback registries (localhost, 127.0.0.1, ::1), https:// otherwise.
  std::string scheme() const;
  std::string base_url() const { return scheme() + "://" + api_host() + "/v2/" + repository; }
  // What to ask the manifests endpoint for: the digest when pinned, else the tag.
  std::string manifest_ref() const { return digest.empty() ? tag : digest; }
  // Canonical form: registry/repository[:tag][@digest].
  std::string str() const;
};

// Throws banger::Error("EINVAL", ...) naming the offending part.
Reference parse_reference(std::string_view text);

// "sha256:<64 lowercase hex>": the only digest form accepted anywhere, since
// digests become file names in the blob cache.
bool valid_digest(std::string_view d);
void check_digest(std::string_view d, std::string_view what);

}  // namespace banger::image
