#pragma once
// Builds a root filesystem inside an ext4 image straight from layer tar
// streams (gzip, zstd or plain), with OCI layer semantics, and no host
// directory in between: ownership, modes, device nodes and xattrs are
// written into the image as the archive says, which is why no root is
// needed.
//
// Layer rules: layers are applied oldest first; `.wh.<name>` deletes <name>
// from lower layers; `.wh..wh..opq` empties its directory of lower-layer
// content; a later entry replaces an earlier one. Directory components that
// are symlinks are followed inside the image (as container runtimes do), so
// `bin -> usr/bin` works.
//
// Rejected (EUNSAFE, naming the layer and the entry): absolute paths, `..`
// components, names longer than 255 bytes or paths longer than 4096, a
// symlink whose target climbs above the image root from where it sits, a
// hardlink to something outside the archive's tree or not yet present, an
// entry larger than the space left in the image or than max_file_bytes.
//
// Speed: a gzip layer is inflated with igzip on a second thread while this
// one parses tar and writes ext4 (engine/core/gunzip_source.hpp,
// prefetch_source.hpp), and the stream is read to its very end, so that a
// source which verifies a digest at the end (a blob still downloading) has
// passed or thrown before apply_layer returns.
#include <cstdint>
#include <functional>
#include <string>

#include "engine/core/byte_source.hpp"
#include "engine/ext4/filesystem.hpp"

namespace banger::ext4 {

struct LayerStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;  // regular file content written
  std::uint64_t whiteouts = 0;
  // What measure_layer() would say: file data rounded up to 4 KiB blocks
  // plus a per-entry allowance, for sizing the finished image.
  std::uint64_t content = 0;
};

struct PopulateOptions {
  std::uint64_t max_file_bytes = 64ull << 30;
  // Called on this thread about ten times a second while entries are
  // written (progress display); an exception from it stops the layer.
  std::function<void(const LayerStats&)> progress;
};

LayerStats apply_layer(Filesystem& fs, ByteSource& layer, const PopulateOptions& opts = {});

// The uncompressed size of a layer's content (file data plus a per-entry
// allowance for metadata): one pass over the stream, for sizing images.
std::uint64_t measure_layer(ByteSource& layer);

}  // namespace banger::ext4
