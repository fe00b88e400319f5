#include "engine/image/layer_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <exception>
#include <memory>
#include <unordered_map>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/gzip_writer.hpp"
#include "engine/core/sha256.hpp"

namespace banger::image {
namespace {

struct Output {
  int fd = -1;
  std::string path;
  Sha256 tar_hash, blob_hash;
  std::uint64_t tar_bytes = 0, blob_bytes = 0;
  std::unique_ptr<GzipWriter> gz;
  std::exception_ptr err;  // what stopped a libarchive callback

  void write_all(const std::byte* p, size_t n) {
    blob_hash.update(p, n);
    blob_bytes += n;
    while (n > 0) {
      ssize_t w = ::write(fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw Error::last("write", path);
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }
};

la_ssize_t on_write(archive* a, void* user, const void* buf, size_t n) {
  auto* out = static_cast<Output*>(user);
  try {
    out->tar_hash.update(buf, n);
    out->tar_bytes += n;
    out->gz->write(buf, n);
    return static_cast<la_ssize_t>(n);
  } catch (const std::exception& e) {
    out->err = std::current_exception();
    archive_set_error(a, EIO, "%s", e.what());
    return -1;
  }
}

unsigned int filetype(const std::string& type) {
  if (type == "file") return AE_IFREG;
  if (type == "directory") return AE_IFDIR;
  if (type == "symlink") return AE_IFLNK;
  if (type == "char") return AE_IFCHR;
  if (type == "block") return AE_IFBLK;
  if (type == "fifo") return AE_IFIFO;
  return 0;
}

// Image path to tar name: "/" is "./", directories end in '/', no leading '/'.
std::string tar_name(const std::string& path, bool dir) {
  if (path == "/") return "./";
  return path.substr(1) + (dir ? "/" : "");
}

class Writer {
 public:
  Writer(ext4::Filesystem& fs, Output& out) : fs_(fs), out_(out), a_(archive_write_new(), archive_write_free) {
    if (!a_) throw Error("ENOMEM", "archive_write_new");
    if (archive_write_set_format_pax(a_.get()) != ARCHIVE_OK || archive_write_add_filter_none(a_.get()) != ARCHIVE_OK ||
        archive_write_open(a_.get(), &out_, nullptr, on_write, nullptr) != ARCHIVE_OK)
      fail("open");
  }

  void entry(const std::string& path, const ext4::Stat& st, LayerResult& res) {
    unsigned int type = filetype(st.type);
    if (!type) {  // a socket: a tar has no way to hold it
      res.skipped.push_back(path);
      return;
    }
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
    if (!e) throw Error("ENOMEM", "archive_entry_new");
    archive_entry_set_pathname(e.get(), tar_name(path, type == AE_IFDIR).c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), st.mode);
    archive_entry_set_uid(e.get(), st.uid);
    archive_entry_set_gid(e.get(), st.gid);
    archive_entry_set_mtime(e.get(), st.mtime, st.mtime_nsec);
    archive_entry_set_size(e.get(), 0);
    if (type != AE_IFDIR && st.nlink > 1) {
      auto [it, first] = first_path_.emplace(st.ino, path);
      if (!first) {  // the file went out already: this name links to it
        archive_entry_set_hardlink(e.get(), tar_name(it->second, false).c_str());
        header(e.get(), path);
        return;
      }
    }
    if (type == AE_IFREG) archive_entry_set_size(e.get(), static_cast<la_int64_t>(st.size));
    if (type == AE_IFLNK) archive_entry_set_symlink(e.get(), st.target.c_str());
    if (type == AE_IFCHR || type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e.get(), st.rdev_major);
      archive_entry_set_rdevminor(e.get(), st.rdev_minor);
    }
    for (const auto& [name, value] : fs_.xattrs(path))
      archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
    header(e.get(), path);
    if (type == AE_IFREG) {
      std::uint64_t written = 0;
      fs_.read_to(path, [&](const char* p, size_t n) {
        la_ssize_t w = archive_write_data(a_.get(), p, n);
        if (w < 0 || static_cast<size_t>(w) != n) fail("write " + path);
        written += n;
      });
      if (written != st.size) throw Error("EIO", path + ": read " + std::to_string(written) + " of " + std::to_string(st.size) + " bytes");
    }
  }

  void close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("close");
  }

 private:
  void header(archive_entry* e, const std::string& path) {
    if (archive_write_header(a_.get(), e) != ARCHIVE_OK) fail(path);
  }

  [[noreturn]] void fail(const std::string& what) {
    if (out_.err) std::rethrow_exception(out_.err);
    const char* why = archive_error_string(a_.get());
    throw Error("EIO", "writing the layer: " + what + ": " + (why ? why : "libarchive failed"));
  }

  ext4::Filesystem& fs_;
  Output& out_;
  std::unique_ptr<archive, decltype(&archive_write_free)> a_;
  std::unordered_map<std::uint32_t, std::string> first_path_;  // inode -> its first path
};

}  // namespace

LayerResult write_layer(ext4::Filesystem& fs, const std::string& out_path,
                        const std::function<void(const LayerWriteProgress&)>& progress) {
  Output out;
  out.path = out_path;
  out.fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out.fd < 0) throw Error::last("create", out_path);
  try {
    out.gz = std::make_unique<GzipWriter>([&out](const std::byte* p, size_t n) { out.write_all(p, n); });
    LayerResult res;
    {
      Writer w(fs, out);
      using clock = std::chrono::steady_clock;
      auto next = clock::now();
      fs.walk([&](const std::string& path, const ext4::Stat& st) {
        cancel::check();
        if (progress && clock::now() >= next) {
          progress({res.entries, out.tar_bytes});
          next = clock::now() + std::chrono::milliseconds(100);
        }
        w.entry(path, st, res);
        ++res.entries;
      });
      w.close();
    }
    out.gz->finish();
    if (::fsync(out.fd) != 0) throw Error::last("fsync", out_path);
    if (::close(out.fd) != 0) {
      out.fd = -1;
      throw Error::last("close", out_path);
    }
    out.fd = -1;
    res.entries -= res.skipped.size();
    res.digest = "sha256:" + out.blob_hash.hex();
    res.diff_id = "sha256:" + out.tar_hash.hex();
    res.size = out.blob_bytes;
    res.tar_bytes = out.tar_bytes;
    if (progress) progress({res.entries, res.tar_bytes});
    return res;
  } catch (...) {
    if (out.fd >= 0) ::close(out.fd);
    ::unlink(out_path.c_str());
    throw;
  }
}

}  // namespace banger::image
