#pragma once
// gzip decompression of a byte stream with ISA-L's igzip inflater.
//
// Why not zlib (which libarchive would use): measured on the development
// machine on the Debian image layer of bench/pull.sh (105 MB of gzip -6, 272
// MB of tar), to /dev/null: zcat (zlib) 1.36 s, pigz -d 0.87 s, libdeflate
// 0.44 s, igzip 0.34 s. libdeflate has no streaming API (it needs the whole
// input and output in memory, 370 MB here), so igzip it is: 4x zlib, and
// streaming, so a layer is unpacked while it downloads.
//
// Multi-member streams (concatenated gzip files) are read as one, as gzip(1)
// and libarchive do; bytes after the last member that are not another gzip
// header are read (so a digest over the raw stream still covers them) and
// ignored. Each member's CRC-32 and length are checked; a corrupt or
// truncated stream throws EINVAL.
#include <memory>

#include "engine/core/byte_source.hpp"

namespace banger {

// The decompressed bytes of `in`. `in` must outlive the result.
std::unique_ptr<ByteSource> gunzip_source(ByteSource& in);

// gunzip_source(in) when `in` starts with the gzip magic; otherwise `in`'s
// bytes unchanged (plain tar, zstd, xz: libarchive recognises those itself).
std::unique_ptr<ByteSource> gunzip_if_gzip(ByteSource& in);

}  // namespace banger
