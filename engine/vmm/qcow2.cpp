#include "engine/vmm/qcow2.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/core/write_all.hpp"

namespace banger::vmm {
namespace {

constexpr std::uint32_t kClusterBits = 16;  // 64 KiB, qemu-img's default
constexpr std::uint64_t kCluster = 1ULL << kClusterBits;
constexpr std::uint32_t kRefcountOrder = 4;  // 16-bit refcounts
constexpr std::uint32_t kHeaderLength = 112;  // v3 fields + compression type, padded to 8
constexpr std::uint32_t kBackingFormatExt = 0xE2792ACA;
constexpr std::size_t kMaxBackingName = 1023;  // QEMU refuses longer names
constexpr std::uint64_t kMaxL1Bytes = 32ULL << 20;  // QEMU's QCOW_MAX_L1_SIZE
// Cluster 0: header; 1: refcount table; 2: its one refcount block; 3..: L1.
constexpr std::uint64_t kRefTableOffset = kCluster, kRefBlockOffset = 2 * kCluster, kL1Offset = 3 * kCluster;

void put_be(unsigned char* p, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t get_be(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

std::string_view as_chars(const void* p, std::size_t n) { return {static_cast<const char*>(p), n}; }

bool is_qcow2(int fd, std::uint64_t* size) {
  unsigned char h[32];
  if (::pread(fd, h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || std::memcmp(h, "QFI\xfb", 4) != 0) return false;
  if (size) *size = get_be(h + 24, 8);
  return true;
}

// The base's virtual size, checking that it is what `format` says.
std::uint64_t base_size(const std::string& base, const std::string& format) {
  UniqueFd fd(::open(base.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error::last("qcow2 overlay: open the base", base);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("qcow2 overlay: stat", base);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) throw Error("EINVAL", "qcow2 overlay: " + base + " is not a file");
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  if (format == "qcow2" && !is_qcow2(fd.get(), &size)) {
    throw Error("EINVAL", "qcow2 overlay: " + base + " is not a qcow2 image");
  }
  return size;
}

std::vector<unsigned char> header(std::uint64_t size, std::uint32_t l1_entries, std::string_view format,
                                  std::string_view backing) {
  const std::uint64_t ext_data = (format.size() + 7) / 8 * 8;
  const std::uint64_t backing_offset = kHeaderLength + 8 + ext_data + 8;  // after the extensions and their end mark
  std::vector<unsigned char> h(backing_offset + backing.size(), 0);
  unsigned char* p = h.data();
  std::memcpy(p, "QFI\xfb", 4);
  put_be(p + 4, 3, 4);  // version
  put_be(p + 8, backing_offset, 8);
  put_be(p + 16, backing.size(), 4);
  put_be(p + 20, kClusterBits, 4);
  put_be(p + 24, size, 8);
  // 32: no encryption
  put_be(p + 36, l1_entries, 4);
  put_be(p + 40, kL1Offset, 8);
  put_be(p + 48, kRefTableOffset, 8);
  put_be(p + 56, 1, 4);  // refcount table clusters
  // 60: no snapshots; 72..95: no incompatible, compatible or autoclear features
  put_be(p + 96, kRefcountOrder, 4);
  put_be(p + 100, kHeaderLength, 4);
  // 104: compression type 0 (zlib), then padding
  unsigned char* ext = p + kHeaderLength;
  put_be(ext, kBackingFormatExt, 4);
  put_be(ext + 4, format.size(), 4);
  std::memcpy(ext + 8, format.data(), format.size());
  // then the end-of-extensions mark (type 0, length 0): zeros already
  std::memcpy(p + backing_offset, backing.data(), backing.size());
  return h;
}

}  // namespace

std::uint64_t qcow2_virtual_size(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error::last("open", path);
  std::uint64_t size = 0;
  if (!is_qcow2(fd.get(), &size)) throw Error("EINVAL", path + " is not a qcow2 image");
  return size;
}

void create_qcow2_overlay(const std::string& base, const std::string& overlay, long long size_bytes,
                          const std::string& base_format) {
  if (base_format != "raw" && base_format != "qcow2") {
    throw Error("EINVAL", "qcow2 overlay: unknown base format '" + base_format + "'");
  }
  if (size_bytes < 0) throw Error("EINVAL", "qcow2 overlay: negative size");
  const std::string backing = std::filesystem::absolute(base).string();
  if (backing.size() > kMaxBackingName || backing.find('\0') != std::string::npos) {
    throw Error("EINVAL", "qcow2 overlay: the base's path is longer than qcow2 allows: " + backing);
  }
  std::uint64_t size = base_size(backing, base_format);
  if (size_bytes > 0) size = static_cast<std::uint64_t>(size_bytes);
  size = (size + 511) / 512 * 512;
  // One L1 entry maps one L2 table, which maps cluster/8 clusters.
  const std::uint64_t per_l1 = kCluster * (kCluster / 8);
  const std::uint64_t l1_entries = (size + per_l1 - 1) / per_l1;
  if (l1_entries * 8 > kMaxL1Bytes) throw Error("EINVAL", "qcow2 overlay: a virtual size of " +
                                                               std::to_string(size) + " bytes is too large");
  const std::uint64_t l1_clusters = std::max<std::uint64_t>(1, (l1_entries * 8 + kCluster - 1) / kCluster);

  UniqueFd fd(::open(overlay.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) throw Error::last("qcow2 overlay: create", overlay);
  try {
    auto h = header(size, static_cast<std::uint32_t>(l1_entries), base_format, backing);
    pwrite_all(fd.get(), as_chars(h.data(), h.size()), 0, overlay);
    unsigned char entry[8];
    put_be(entry, kRefBlockOffset, 8);
    pwrite_all(fd.get(), as_chars(entry, sizeof entry), kRefTableOffset, overlay);
    // Every cluster the metadata uses is referenced once: the header, the
    // refcount table, the refcount block and the L1 table's clusters.
    const std::uint64_t used = 3 + l1_clusters;
    std::vector<unsigned char> refcounts(used * 2, 0);
    for (std::uint64_t i = 0; i < used; ++i) put_be(refcounts.data() + 2 * i, 1, 2);
    pwrite_all(fd.get(), as_chars(refcounts.data(), refcounts.size()), kRefBlockOffset, overlay);
    // The L1 table is all zeros (nothing allocated): a hole reads as that.
    if (::ftruncate(fd.get(), static_cast<off_t>(kL1Offset + l1_entries * 8)) != 0) {
      throw Error::last("qcow2 overlay: size", overlay);
    }
  } catch (...) {
    ::unlink(overlay.c_str());
    throw;
  }
}

}  // namespace banger::vmm
