#pragma once
// Pushing a one-layer image to a registry (OCI distribution API): each blob
// is asked for first (HEAD) and uploaded only when missing, in one request
// (POST /blobs/uploads/, then PUT <location>?digest= with the whole blob
// and its Content-Length); then the OCI manifest is PUT under the tag.
// Authentication is the pull's (engine/image/registry.hpp), asking tokens
// for pull and push.
#include <cstdint>
#include <functional>
#include <string>

#include "engine/image/registry.hpp"

namespace banger::image {

inline constexpr const char* oci_config_media = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* oci_layer_gzip_media = "application/vnd.oci.image.layer.v1.tar+gzip";

struct PushLayer {
  std::string path;    // the gzip blob, already written
  std::string digest;  // sha256:<hex> of its bytes
  std::uint64_t size = 0;
};

struct PushResult {
  std::string digest;         // of the manifest
  std::string config_digest;
  std::string manifest;       // its exact bytes
  bool layer_uploaded = false;   // false: the registry had it already
  bool config_uploaded = false;
  std::uint64_t uploaded_bytes = 0;
};

// Called on this thread while the layer uploads (bytes sent, of total),
// about ten times a second; what it throws stops the upload and propagates.
using PushProgressFn = std::function<void(std::uint64_t sent, std::uint64_t total)>;

// Pushes the image to client.reference() (which must name a tag). `config`
// is the image config's exact bytes. The layer file is re-hashed while it is
// sent and must match layer.digest and layer.size (EDIGEST otherwise: the
// file changed after it was written). Errors: EACCES (denied), ENOENT (no
// such repository), EFETCH (unreachable, or a request failed), ECANCELED.
PushResult push_image(Client& client, const PushLayer& layer, const std::string& config,
                      const PushProgressFn& progress = {});

// The OCI manifest of a one-layer image, as push_image sends it.
std::string one_layer_manifest(const std::string& config_digest, std::uint64_t config_size, const PushLayer& layer);

}  // namespace banger::image
