#pragma once
// zstd compression and decompression of byte streams with libzstd's
// streaming API (kernel bundles: a tar framed by libarchive, compressed
// here). Called directly rather than through libarchive's zstd filter so the
// writer picks its level and worker threads, and the reader bounds the
// window a hostile stream may ask for and tells a truncated stream from a
// complete one.
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "engine/core/byte_source.hpp"

namespace banger {

// Compresses what write() is given and hands the compressed bytes to `out`
// as they are produced; finish() ends the frame. Without finish() the
// stream is incomplete (a reader refuses it).
class ZstdSink {
 public:
  // level: 1..19 (ZSTD_maxCLevel's ultra levels are refused: their windows
  // exceed what zstd_source accepts). workers: 0 compresses on this thread.
  ZstdSink(std::function<void(std::string_view)> out, int level, int workers = 0);
  ~ZstdSink();
  ZstdSink(const ZstdSink&) = delete;
  ZstdSink& operator=(const ZstdSink&) = delete;
  void write(std::string_view data);
  void finish();
  std::uint64_t bytes_in() const { return in_; }

 private:
  struct Impl;
  void pump(std::string_view data, bool end);
  std::unique_ptr<Impl> impl_;
  std::function<void(std::string_view)> out_;
  std::uint64_t in_ = 0;
  bool finished_ = false;
};

// The decompressed bytes of `in` (one or more concatenated zstd frames).
// Throws EINVAL for a corrupt stream, one that ends inside a frame, bytes
// that are not a frame, or a frame whose window exceeds 2^27 bytes (zstd's
// own default limit, kept explicit: memory a hostile stream cannot raise).
// `in` must outlive the result.
std::unique_ptr<ByteSource> zstd_source(ByteSource& in);

}  // namespace banger
