// libFuzzer target for the layer path: arbitrary bytes as one or two layer
// streams (gzip, zstd or plain tar, anything libarchive and igzip accept)
// applied with OCI layer rules (whiteouts, opaque directories, links across
// layers) into a scratch ext4 image, which is then closed, reopened and
// walked. Expected failures are banger::Errors (EUNSAFE, EINVAL, ENOSPC,
// ...); a crash, a sanitizer report, another exception type, or an image
// that cannot be reopened and read back is a bug.
//
// Input: [u16 little-endian n][n bytes: layer 1][the rest: layer 2, if any].
// tests/fuzz/make_seeds.cpp writes seeds in that shape.
//
// BANGER_FUZZ_FSCK=1 also runs `e2fsck -fn` on every image and aborts when it
// is not clean (slow: for long runs by hand, not for CI).
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/byte_source.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/ext4/filesystem.hpp"
#include "engine/ext4/populate.hpp"

using namespace banger;

namespace {

constexpr std::uint64_t kImageBytes = 16 << 20;

std::string g_image;                                             // the scratch image, rewritten per input
std::vector<std::pair<off_t, std::vector<char>>> g_pristine;     // the empty filesystem's non-zero blocks
bool g_fsck = false;

// The freshly made filesystem, kept as its non-zero 4 KiB blocks, so each
// input starts from it without running mkfs again.
void capture_pristine() {
  int fd = ::open(g_image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) std::abort();
  std::vector<char> block(4096), zero(4096);
  for (off_t off = 0; off < static_cast<off_t>(kImageBytes); off += 4096) {
    if (::pread(fd, block.data(), block.size(), off) != 4096) std::abort();
    if (std::memcmp(block.data(), zero.data(), 4096) != 0) g_pristine.emplace_back(off, block);
  }
  ::close(fd);
}

void restore_pristine() {
  int fd = ::open(g_image.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, 0) != 0 || ::ftruncate(fd, kImageBytes) != 0) std::abort();
  for (auto& [off, block] : g_pristine)
    if (::pwrite(fd, block.data(), block.size(), off) != 4096) std::abort();
  ::close(fd);
}

// Everything in the image must read back: directories list, entries stat,
// files read, symlinks give their targets.
void walk(ext4::Filesystem& fs, const std::string& dir) {
  for (const std::string& name : fs.list(dir)) {
    std::string p = (dir == "/" ? "" : dir) + "/" + name;
    auto st = fs.stat(p);
    if (!st) std::abort();  // listed but not there
    if (st->type == "directory") walk(fs, p);
    if (st->type == "file" && fs.read(p).size() != st->size) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  static std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/banger-fuzz-XXXXXX";
  if (!::mkdtemp(dir.data())) std::abort();
  g_image = dir + "/scratch.ext4";
  std::atexit([] {
    ::unlink(g_image.c_str());
    ::rmdir(dir.c_str());
  });
  ext4::mkfs(g_image, kImageBytes);
  capture_pristine();
  g_fsck = std::getenv("BANGER_FUZZ_FSCK") != nullptr;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  std::vector<std::vector<std::byte>> layers;
  if (size >= 2) {
    size_t n1 = std::min<size_t>(data[0] | (data[1] << 8), size - 2);
    auto* p = reinterpret_cast<const std::byte*>(data) + 2;
    layers.emplace_back(p, p + n1);
    if (size - 2 > n1) layers.emplace_back(p + n1, p + (size - 2));
  } else {
    auto* p = reinterpret_cast<const std::byte*>(data);
    layers.emplace_back(p, p + size);
  }
  restore_pristine();
  auto fs = ext4::Filesystem::open(g_image, true);
  for (size_t i = 0; i < layers.size(); ++i) {
    auto src = memory_source(std::move(layers[i]), "layer-" + std::to_string(i + 1));
    try {
      ext4::apply_layer(*fs, *src);
    } catch (const Error&) {
      break;  // refused: what is already in the image must still be sound
    }
  }
  fs->close();
  auto check = ext4::Filesystem::open(g_image, false);
  walk(*check, "/");
  check->close();
  if (g_fsck) {
    process::SpawnOptions o;
    o.argv = {"e2fsck", "-fn", g_image};
    auto r = process::run(o);
    if (r.status.shell_code() != 0) {
      std::fprintf(stderr, "e2fsck:\n%s%s\n", r.out.c_str(), r.err.c_str());
      std::abort();
    }
  }
  return 0;
}
