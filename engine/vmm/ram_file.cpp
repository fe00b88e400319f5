#include "engine/vmm/ram_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger::vmm {
namespace {

// copy_file_range cannot cross some filesystem pairs: copy through memory.
void copy_by_hand(int src, int dst, off_t off, off_t len, const std::string& what) {
  std::vector<char> buf(1 << 20);
  while (len > 0) {
    ssize_t n = ::pread(src, buf.data(), static_cast<size_t>(std::min<off_t>(len, static_cast<off_t>(buf.size()))), off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", what);
    if (n == 0) throw Error("EIO", what + " shrank while it was copied");
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(dst, buf.data() + done, static_cast<size_t>(n - done), off + done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw Error::last("write", what);
      done += w;
    }
    off += n;
    len -= n;
  }
}

}  // namespace

std::uint64_t copy_data_extents(int src, int dst, const std::string& what) {
  struct stat st {};
  if (::fstat(src, &st) != 0) throw Error::last("fstat", what);
  const off_t size = st.st_size;
  std::uint64_t copied = 0;
  bool in_kernel = true;
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(src, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) throw Error::last("seek", what);
    off_t hole = ::lseek(src, data, SEEK_HOLE);
    if (hole < 0) throw Error::last("seek", what);
    off_t len = hole - data;
    off_t in = data, out = data;
    while (in_kernel && len > 0) {
      ssize_t n = ::copy_file_range(src, &in, dst, &out, static_cast<size_t>(len), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)) {
        in_kernel = false;
        break;
      }
      if (n < 0) throw Error::last("copy", what);
      if (n == 0) throw Error("EIO", what + " shrank while it was copied");
      len -= n;
    }
    if (len > 0) copy_by_hand(src, dst, in, len, what);
    copied += static_cast<std::uint64_t>(hole - data);
    pos = hole;
    cancel::check();
  }
  if (::ftruncate(dst, size) != 0) throw Error::last("truncate", what);
  return copied;
}

UniqueFd create_ram_file(const std::string& path, std::uint64_t bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw Error::last("create", path);
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) throw Error::last("truncate", path);
  return fd;
}

}  // namespace banger::vmm
