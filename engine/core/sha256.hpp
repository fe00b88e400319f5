#pragma once
// SHA-256 through OpenSSL's libcrypto (hardware-accelerated where the CPU
// allows). Streaming, so blobs are hashed while they are written.
#include <memory>
#include <string>
#include <string_view>

namespace banger {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  void update(const void* data, size_t len) { update(std::string_view(static_cast<const char*>(data), len)); }
  std::string hex();  // finishes the hash

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::string& path);

}  // namespace banger
