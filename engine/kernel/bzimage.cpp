#include "engine/kernel/bzimage.hpp"

#include <archive.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "engine/core/error.hpp"

namespace banger::kernel {
namespace {

std::uint32_t le32(std::string_view d, size_t off) {
  if (off + 4 > d.size()) throw Error("EINVAL", "truncated kernel image");
  std::uint32_t v;
  std::memcpy(&v, d.data() + off, 4);
  return v;  // x86 only: the header is little-endian like the host
}

bool starts_with(std::string_view d, std::string_view magic) { return d.substr(0, magic.size()) == magic; }

}  // namespace

const char* to_string(Compression c) {
  switch (c) {
    case Compression::none: return "none";
    case Compression::gzip: return "gzip";
    case Compression::xz: return "xz";
    case Compression::zstd: return "zstd";
    case Compression::lz4_legacy: return "lz4";
    case Compression::bzip2: return "bzip2";
    case Compression::lzma: return "lzma";
    case Compression::unknown: return "unknown";
  }
  return "unknown";
}

Compression detect_compression(std::string_view p) {
  using namespace std::literals;
  if (starts_with(p, "\x1f\x8b"sv)) return Compression::gzip;
  if (starts_with(p, "\xfd" "7zXZ"sv)) return Compression::xz;
  if (starts_with(p, "\x28\xb5\x2f\xfd"sv)) return Compression::zstd;
  if (starts_with(p, "\x02\x21\x4c\x18"sv)) return Compression::lz4_legacy;
  if (starts_with(p, "BZh"sv)) return Compression::bzip2;
  if (starts_with(p, "\x5d\x00\x00"sv)) return Compression::lzma;
  if (starts_with(p, "\x7f" "ELF"sv)) return Compression::none;
  return Compression::unknown;
}

bool is_elf_x86_64(std::string_view d) {
  // e_ident: magic, ELFCLASS64 (2), little-endian (1); e_type EXEC (2); e_machine x86-64 (62)
  return d.size() > 64 && starts_with(d, "\x7f" "ELF") && d[4] == 2 && d[5] == 1 && d[16] == 2 && d[17] == 0 &&
         static_cast<unsigned char>(d[18]) == 62 && d[19] == 0;
}

std::string decompress(std::string_view data, Compression kind) {
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  if (!a) throw Error("ENOMEM", "archive_read_new");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_memory(a.get(), data.data(), data.size()) != ARCHIVE_OK)
    throw Error("EINVAL", std::string("cannot decompress the ") + to_string(kind) + " payload: " +
                              archive_error_string(a.get()));
  archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK)
    throw Error("EINVAL", std::string("cannot decompress the ") + to_string(kind) + " payload: " +
                              archive_error_string(a.get()));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      // Legacy lz4 has no end marker: the decoder reports the end of the
      // input as truncation once every block came out. The size check in
      // extract_vmlinux decides whether the output is complete.
      if (kind == Compression::lz4_legacy && !out.empty()) break;
      throw Error("EINVAL", std::string("decompressing the ") + to_string(kind) + " payload: " +
                                archive_error_string(a.get()));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string extract_vmlinux(std::string_view image) {
  if (is_elf_x86_64(image)) return std::string(image);
  if (image.size() < 0x250 || image.substr(0x202, 4) != "HdrS")
    throw Error("EINVAL", "not an x86 bzImage or ELF vmlinux (no HdrS boot header)");
  const unsigned version = static_cast<unsigned char>(image[0x206]) | (static_cast<unsigned char>(image[0x207]) << 8);
  if (version < 0x208) throw Error("EINVAL", "boot protocol too old to locate the payload");
  unsigned setup_sects = static_cast<unsigned char>(image[0x1f1]);
  if (setup_sects == 0) setup_sects = 4;
  const size_t payload_off = (setup_sects + 1) * 512 + le32(image, 0x248);
  const size_t payload_len = le32(image, 0x24c);
  if (payload_off + payload_len > image.size()) throw Error("EINVAL", "bzImage payload lies past the end of the file");
  std::string_view payload = image.substr(payload_off, payload_len);
  Compression c = detect_compression(payload);
  if (c == Compression::unknown) throw Error("EINVAL", "unknown bzImage payload compression");
  // The last 4 bytes of a compressed payload are the size the kernel build
  // appends, not part of the stream.
  if (c != Compression::none && payload.size() < 8) throw Error("EINVAL", "bzImage payload too short");
  std::string out = c == Compression::none ? std::string(payload) : decompress(payload.substr(0, payload.size() - 4), c);
  // The kernel build appends the uncompressed size to every compressed
  // payload (gzip's own trailer holds it too): a short read cannot pass.
  if (c != Compression::none && le32(payload, payload.size() - 4) != static_cast<std::uint32_t>(out.size()))
    throw Error("EINVAL", std::string("the ") + to_string(c) + " payload decompressed to " + std::to_string(out.size()) +
                              " bytes, the image says " + std::to_string(le32(payload, payload.size() - 4)));
  if (!is_elf_x86_64(out))
    throw Error("EINVAL", std::string("the ") + to_string(c) + " payload did not decompress to an ELF64 x86-64 vmlinux");
  return out;
}

}  // namespace banger::kernel
