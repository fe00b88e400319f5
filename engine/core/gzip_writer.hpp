#pragma once
// gzip compression with ISA-L's igzip (level 1: several times zlib's speed,
// for layers that are written once and pushed): bytes go in through
// write(), compressed bytes come out through the sink in chunks, with the
// gzip header and trailer igzip writes itself.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace banger {

class GzipWriter {
 public:
  using Sink = std::function<void(const std::byte* data, size_t len)>;
  explicit GzipWriter(Sink sink);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;

  void write(const void* data, size_t len);
  // Ends the stream (trailer with CRC and length); write() after it throws.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace banger
