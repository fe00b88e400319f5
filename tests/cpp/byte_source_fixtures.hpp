#pragma once
// Inputs for the tests of byte sources and the streams around them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/core/byte_source.hpp"

namespace banger::test {

// `n` bytes from a seeded generator, in alternating runs of `run` bytes of
// letters and of noise: a compressor's literal and match paths both work.
inline std::string mixed_bytes(size_t n, std::uint32_t seed, size_t run) {
  std::string s(n, '\0');
  std::uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s[i] = (i / run) % 2 ? static_cast<char>(x >> 24) : static_cast<char>('a' + (x >> 28));
  }
  return s;
}

// Serves a string in chunks of `chunk` bytes; counts what it served.
class Chunked final : public ByteSource {
 public:
  Chunked(std::string data, size_t chunk) : data_(std::move(data)), chunk_(chunk) {}
  std::span<const std::byte> read() override {
    size_t n = std::min(chunk_, data_.size() - off_);
    auto* p = reinterpret_cast<const std::byte*>(data_.data()) + off_;
    off_ += n;
    return {p, n};
  }
  std::string describe() const override { return "test-stream"; }
  size_t served() const { return off_; }

 private:
  std::string data_;
  size_t chunk_, off_ = 0;
};

}  // namespace banger::test
