#pragma once
// Reads a source on a thread of its own, a few chunks ahead of the consumer,
// so that producing the bytes (reading a blob while it downloads, hashing
// it, inflating it) and consuming them (parsing tar, writing ext4) use two
// cores instead of taking turns on one.
//
// Errors travel in order: the consumer sees every chunk read before the
// failure, then the same banger::Error (code and message). Destroying the
// prefetcher stops its thread: it asks the source to cancel() a read that is
// waiting and joins it.
#include <memory>

#include "engine/core/byte_source.hpp"

namespace banger {

// `in` must outlive the result; `depth` is how many chunks may wait.
std::unique_ptr<ByteSource> prefetch(ByteSource& in, size_t depth = 16);

}  // namespace banger
