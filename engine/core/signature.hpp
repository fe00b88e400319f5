#pragma once
// Ed25519 signatures over exact bytes (release manifests: docs/install.md),
// through OpenSSL's one-shot EVP_DigestVerify (Ed25519 takes no digest).
#include <string_view>

namespace banger {

// True when `signature` (the raw 64 bytes) is `public_key_pem`'s signature
// of `message`; false for any other signature. Throws EKEY when the PEM is
// not a SubjectPublicKeyInfo or its key is not Ed25519.
bool verify_ed25519(std::string_view public_key_pem, std::string_view message, std::string_view signature);

}  // namespace banger
