#include "engine/vmm/qcow2_chain.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>

#include "engine/core/error.hpp"

namespace banger::vmm {
namespace {

constexpr std::uint32_t kBackingFormatExt = 0xe2792aca;  // qcow2 header extension: backing file format
constexpr size_t kHeaderRead = 64 * 1024;  // extensions live in the first cluster

std::uint64_t be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

bool is_qcow2(int fd) {
  unsigned char m[4];
  return ::pread(fd, m, sizeof m, 0) == 4 && std::memcmp(m, "QFI\xfb", 4) == 0;
}

Qcow2Backing qcow2_backing(int fd, const std::string& what) {
  // Header (big endian): magic, version (4), backing_file_offset (8) and
  // backing_file_size (4); version 3 has its length at 100, version 2 is 72
  // bytes. Extensions follow the header: type (4), length (4), data padded
  // to 8 bytes, until type 0.
  std::string buf(kHeaderRead, '\0');
  ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  if (n < 0) throw Error::last("read", what);
  buf.resize(static_cast<size_t>(n));
  const auto* h = reinterpret_cast<const unsigned char*>(buf.data());
  if (buf.size() < 72 || std::memcmp(h, "QFI\xfb", 4) != 0) throw Error("EINVAL", what + " is not a qcow2 image");
  std::uint64_t version = be(h + 4, 4);
  std::uint64_t off = be(h + 8, 8), size = be(h + 16, 4);
  Qcow2Backing b;
  if (off != 0 && size != 0) {
    if (size > 1023) throw Error("EINVAL", what + ": backing file name too long");
    b.file.resize(size);
    if (::pread(fd, b.file.data(), size, static_cast<off_t>(off)) != static_cast<ssize_t>(size)) {
      throw Error("EIO", what + ": short read of the backing file name");
    }
  }
  std::uint64_t pos = version >= 3 && buf.size() >= 104 ? be(h + 100, 4) : 72;
  while (pos + 8 <= buf.size()) {
    std::uint64_t type = be(h + pos, 4), len = be(h + pos + 4, 4);
    if (type == 0 || pos + 8 + len > buf.size()) break;
    if (type == kBackingFormatExt) b.format.assign(buf.data() + pos + 8, len);
    pos += 8 + ((len + 7) & ~std::uint64_t{7});
  }
  return b;
}

std::vector<ChainLink> open_backing_chain(int fd, const std::string& path, const std::string& format,
                                          size_t max_depth) {
  std::vector<ChainLink> chain;
  int cur = fd;
  std::string cur_path = path, cur_format = format;
  while (cur_format == "qcow2") {
    Qcow2Backing b = qcow2_backing(cur, cur_path);
    if (b.file.empty()) break;
    if (b.format != "raw" && b.format != "qcow2") {
      throw Error("EINVAL", cur_path + " names backing file " + b.file + " with format '" + b.format +
                                "': banger needs raw or qcow2, written in the header (it never probes)");
    }
    if (chain.size() == max_depth) {
      throw Error("EINVAL", path + ": backing chain deeper than " + std::to_string(max_depth) + " images");
    }
    std::filesystem::path next = b.file;
    if (next.is_relative()) next = std::filesystem::path(cur_path).parent_path() / next;
    UniqueFd nfd(::open(next.c_str(), O_RDONLY | O_CLOEXEC));
    if (!nfd) throw Error::last("open", next.string() + " (backing file of " + cur_path + ")");
    chain.push_back({next.string(), b.format, std::move(nfd)});
    cur = chain.back().fd.get();
    cur_path = chain.back().path;
    cur_format = b.format;
  }
  return chain;
}

}  // namespace banger::vmm
