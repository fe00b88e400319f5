#pragma once
// x86 bzImage -> uncompressed ELF vmlinux. Firecracker on x86_64 boots only
// an ELF vmlinux (PVH); Debian ships bzImages whose payload is compressed
// (lz4 for the cloud kernel). The boot protocol header says where the
// payload is (payload_offset/payload_length, boot protocol >= 2.08); its
// first bytes say how it is compressed.
#include <string>
#include <string_view>

namespace banger::kernel {

enum class Compression { none, gzip, xz, zstd, lz4_legacy, bzip2, lzma, unknown };
const char* to_string(Compression c);
Compression detect_compression(std::string_view payload);

// True when `data` is an ELF64 x86-64 executable.
bool is_elf_x86_64(std::string_view data);

// The vmlinux inside a bzImage (or `image` itself when it already is an ELF).
// Throws EINVAL for anything else, with what was found.
std::string extract_vmlinux(std::string_view image);

// Decompresses a whole stream of the given kind (through libarchive).
std::string decompress(std::string_view data, Compression kind);

}  // namespace banger::kernel
