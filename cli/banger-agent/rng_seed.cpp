#include "rng_seed.hpp"

#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::agent {
namespace {

constexpr std::size_t kMinBytes = 32;  // 256 bits: what the CRNG needs to be ready
constexpr std::size_t kMaxBytes = 4096;

std::string take_seed(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
  if (fd.get() < 0) throw Error::last("open", path);
  struct stat st {};
  check_sys(::fstat(fd.get(), &st), "stat", path);
  if (!S_ISREG(st.st_mode)) throw Error("EINVAL", path + " is not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size < kMinBytes || size > kMaxBytes) {
    throw Error("EINVAL", path + ": a seed has 32 to 4096 bytes, this file " + std::to_string(size));
  }
  std::string seed(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd.get(), seed.data() + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", path);
    if (n == 0) throw Error("EIO", path + " shrank while it was read");
    got += static_cast<std::size_t>(n);
  }
  // Gone from the disk before it is used: a later boot, or a copy of the
  // disk, must not credit the same bytes again.
  const std::string zeros(size, '\0');
  if (::pwrite(fd.get(), zeros.data(), size, 0) != static_cast<ssize_t>(size)) throw Error::last("overwrite", path);
  check_sys(::fsync(fd.get()), "fsync", path);
  check_sys(::unlink(path.c_str()), "remove", path);
  return seed;
}

}  // namespace

std::size_t seed_rng_from(const std::string& path) {
  const std::string seed = take_seed(path);
  UniqueFd fd(::open("/dev/urandom", O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) throw Error::last("open", "/dev/urandom");
  // struct rand_pool_info ends in a flexible array of 32-bit words.
  std::vector<std::uint32_t> storage(2 + (seed.size() + 3) / 4);
  auto* info = reinterpret_cast<rand_pool_info*>(storage.data());
  info->entropy_count = static_cast<int>(seed.size() * 8);
  info->buf_size = static_cast<int>(seed.size());
  std::memcpy(info->buf, seed.data(), seed.size());
  int rc = ::ioctl(fd.get(), RNDADDENTROPY, info);
  int e = errno;
  std::memset(storage.data(), 0, storage.size() * sizeof(std::uint32_t));
  if (rc != 0) throw Error::sys(e, "RNDADDENTROPY", "/dev/urandom");
  return seed.size();
}

}  // namespace banger::agent
