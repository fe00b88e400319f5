#pragma once
// Stamped at build time by cmake/WriteBuildInfo.cmake.
namespace banger::build {
extern const char* const version;
extern const char* const commit;
extern const char* const built_at;
// PEM of the Ed25519 key release manifests must be signed with
// (cmake BANGER_RELEASE_PUBKEY; docs/install.md).
extern const char* const release_pubkey;

// The root helper's request protocol. Bump it when a request changes in a
// way an older helper or client would misread: `banger update` compares it
// with the installed helper's before switching versions.
inline constexpr int helper_protocol = 1;
}  // namespace banger::build
