#include "engine/vmm/disk_clone.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "engine/core/atomic_file.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/core/write_all.hpp"

namespace banger::vmm {
namespace {

constexpr size_t kChunk = 1 << 20;
constexpr size_t kBlock = 4096;

using Fd = UniqueFd;

std::string dir_of(const std::string& p) {
  auto slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

// A temporary name beside dst, created O_EXCL (never an existing file or symlink).
int create_temp(const std::string& dst, std::string& temp) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    temp = temp_name(dst + ".tmp-");
    int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) {
      if (fd < 0) throw Error::last("clone: create", temp);
      return fd;
    }
  }
  throw Error("EEXIST", "clone: no free temporary name beside " + dst);
}

bool all_zero(const char* p, size_t n) {
  // memcmp against itself shifted by one byte: zero iff every byte equals the first.
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// Copies [from, to) of in to out, skipping all-zero 4 KiB blocks so they
// stay holes. Returns the bytes written.
std::uint64_t copy_range(int in, int out, off_t from, off_t to, std::vector<char>& buf, const std::string& src,
                         const std::string& temp) {
  std::uint64_t written = 0;
  for (off_t off = from; off < to;) {
    cancel::check();
    size_t want = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(buf.size()), to - off));
    ssize_t r = ::pread(in, buf.data(), want, off);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw Error::last("clone: read", src);
    }
    if (r == 0) break;  // the source shrank under us; the final truncate keeps the size
    size_t n = static_cast<size_t>(r);
    for (size_t b = 0; b < n;) {
      size_t len = std::min(kBlock, n - b);
      if (all_zero(buf.data() + b, len)) {
        b += len;
        continue;
      }
      size_t run = len;  // coalesce consecutive data blocks into one write
      while (b + run < n) {
        size_t next = std::min(kBlock, n - b - run);
        if (all_zero(buf.data() + b + run, next)) break;
        run += next;
      }
      pwrite_all(out, std::string_view(buf.data() + b, run), off + static_cast<off_t>(b), temp);
      written += run;
      b += run;
    }
    off += static_cast<off_t>(n);
  }
  return written;
}

std::uint64_t sparse_copy(int in, int out, off_t size, const std::string& src, const std::string& temp) {
  std::vector<char> buf(kChunk);
  std::uint64_t written = 0;
  off_t off = 0;
  while (off < size) {
    off_t data = ::lseek(in, off, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      if (errno == EINVAL || errno == EOPNOTSUPP) return written + copy_range(in, out, off, size, buf, src, temp);
      throw Error::last("clone: seek data", src);
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) throw Error::last("clone: seek hole", src);
    written += copy_range(in, out, data, std::min(hole, size), buf, src, temp);
    off = hole;
  }
  return written;
}

}  // namespace

const char* to_string(CloneMethod m) { return m == CloneMethod::reflink ? "reflink" : "sparse_copy"; }

CloneResult clone_disk(const std::string& src, const std::string& dst, std::uint64_t size) {
  Fd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) throw Error::last("clone: open", src);
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) throw Error::last("clone: stat", src);
  if (!S_ISREG(st.st_mode)) throw Error("EINVAL", "clone: not a regular file: " + src);
  struct stat existing {};
  if (::lstat(dst.c_str(), &existing) == 0) throw Error("EEXIST", "clone: destination exists: " + dst);

  std::string temp;
  Fd out(create_temp(dst, temp));
  CloneResult res;
  res.size = std::max(size, static_cast<std::uint64_t>(st.st_size));
  try {
    if (::ioctl(out.get(), FICLONE, in.get()) == 0) {
      res.method = CloneMethod::reflink;
    } else {
      // EOPNOTSUPP (ext4, tmpfs), EXDEV (another filesystem), EINVAL
      // (unaligned or unsupported): fall back to copying.
      res.method = CloneMethod::sparse_copy;
      res.bytes_written = sparse_copy(in.get(), out.get(), st.st_size, src, temp);
    }
    if (::ftruncate(out.get(), static_cast<off_t>(res.size)) != 0) throw Error::last("clone: truncate", temp);
    if (::fsync(out.get()) != 0) throw Error::last("clone: fsync", temp);
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) != 0) {
      throw Error::last("clone: rename", dst);
    }
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  fsync_dir(dir_of(dst));
  return res;
}

}  // namespace banger::vmm
