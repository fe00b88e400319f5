#pragma once
// Standard padded base64 (RFC 4648) through libcrypto's EVP_EncodeBlock and
// EVP_DecodeBlock (loaded lazily, engine/lazy/crypto.cpp): registry auth,
// known_hosts keys, binary output in the HTTP API.
#include <string>
#include <string_view>

namespace banger {

std::string base64_encode(std::string_view data);

// Whitespace is ignored. Throws banger::Error("EINVAL") on malformed input.
std::string base64_decode(std::string_view text);

}  // namespace banger
