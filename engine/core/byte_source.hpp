#pragma once
// A pull-style byte stream: the seam between producers (a file, a blob still
// being downloaded, a decompressor) and consumers (the tar-to-ext4 writer,
// digest verification). read() returns the next chunk, an empty span at the
// end of the stream, and throws banger::Error on failure. The returned span
// stays valid until the next read().
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace banger {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::span<const std::byte> read() = 0;
  // What the stream is, for error messages ("layer sha256:ab12...").
  virtual std::string describe() const = 0;
  // Asks a read() that is waiting in another thread (for a download to make
  // progress) to give up soon by throwing ECANCELED; a reader thread's owner
  // calls it before joining. Sources that never wait need not implement it;
  // wrappers pass it on.
  virtual void cancel() {}
};

// Reads a regular file in large chunks.
std::unique_ptr<ByteSource> open_file_source(const std::string& path, size_t chunk = 1 << 20);

// Serves an in-memory buffer (tests, small payloads).
std::unique_ptr<ByteSource> memory_source(std::vector<std::byte> data, std::string name);

}  // namespace banger
