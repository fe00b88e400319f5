#include "engine/kernel/bundle.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>

#include "engine/core/atomic_file.hpp"
#include "engine/core/byte_source.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/sha256.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/core/write_all.hpp"
#include "engine/core/zstd_stream.hpp"
#include "engine/kernel/catalog.hpp"
#include "engine/kernel/staging.hpp"

namespace banger::kernel {
namespace {

// What a bundle may hold, and how large each file may be. Debian's cloud
// vmlinux is 53 MB and banger's initramfs a few MB: the limits leave room
// for kernels with debug info without letting a bundle fill the disk.
struct Member {
  const char* name;
  std::uint64_t max_bytes;
};
constexpr std::array<Member, 3> kMembers{{
    {"manifest.json", 1 << 20},
    {"vmlinux", std::uint64_t{512} << 20},
    {"initrd.img", std::uint64_t{512} << 20},
}};

const Member* member(const std::string& name) {
  for (const auto& m : kMembers) {
    if (name == m.name) return &m;
  }
  return nullptr;
}

[[noreturn]] void fail(struct archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  throw Error("EARCHIVE", what + ": " + (msg ? msg : "libarchive error"));
}

// libarchive writes the tar through this: compressed, hashed, counted.
struct BundleWriter {
  AtomicFile file;
  Sha256 hash;
  std::uint64_t size = 0;
  ZstdSink zstd;
  std::exception_ptr err;

  BundleWriter(const std::string& path, int level)
      : file(path, 0644),
        zstd(
            [this](std::string_view data) {
              hash.update(data);
              file.write(data);
              size += data.size();
            },
            level, static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u))) {}

  static la_ssize_t write_cb(archive* a, void* user, const void* buf, size_t n) {
    auto* self = static_cast<BundleWriter*>(user);
    try {
      self->zstd.write(std::string_view(static_cast<const char*>(buf), n));
      return static_cast<la_ssize_t>(n);
    } catch (const std::exception& e) {
      self->err = std::current_exception();
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
  }
};

// Adds `path` to the tar as `name` (root-owned, 0644, the file's mtime),
// feeding its bytes to `hash` when given.
void add_file(archive* a, const std::string& path, const std::string& name, Sha256* hash) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw Error::last("open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("fstat", path);
  if (!S_ISREG(st.st_mode)) throw Error("EINVAL", path + " is not a regular file");
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  archive_entry_set_size(e.get(), st.st_size);
  archive_entry_set_mtime(e.get(), st.st_mtime, 0);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) fail(a, name);
  std::vector<char> buf(1 << 20);
  std::uint64_t left = static_cast<std::uint64_t>(st.st_size);
  while (left > 0) {
    cancel::check();
    ssize_t n = ::read(fd.get(), buf.data(), std::min<std::uint64_t>(buf.size(), left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error::last("read", path);
    if (n == 0) throw Error("EIO", path + " shrank while being exported");
    if (hash) hash->update(buf.data(), static_cast<size_t>(n));
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) != n) fail(a, name);
    left -= static_cast<std::uint64_t>(n);
  }
}

// libarchive reads the tar from a ByteSource (the decompressed bundle).
struct BundleReader {
  std::unique_ptr<ByteSource> file;
  std::unique_ptr<ByteSource> plain;
  std::unique_ptr<archive, decltype(&archive_read_free)> a{archive_read_new(), archive_read_free};
  std::exception_ptr err;
  std::string path;

  explicit BundleReader(const std::string& p) : file(open_file_source(p)), plain(zstd_source(*file)), path(p) {
    if (!a) throw Error("ENOMEM", "archive_read_new");
    // Tar only, no filters: the zstd layer is ours, and nothing else may
    // hide inside it.
    archive_read_support_format_tar(a.get());
    archive_read_support_filter_none(a.get());
    if (archive_read_open(a.get(), this, nullptr, read_cb, nullptr) != ARCHIVE_OK) fail_read();
  }

  [[noreturn]] void fail_read() {
    if (err) std::rethrow_exception(err);
    const char* why = archive_error_string(a.get());
    throw Error("EINVAL", "bundle " + path + ": " + (why ? why : "not a readable tar archive"));
  }

  // Reads past the tar's end so the zstd stream is checked to its end (its
  // checksum, a cut-off frame).
  void drain() {
    while (!plain->read().empty()) {
    }
  }

  static la_ssize_t read_cb(archive* ar, void* user, const void** buf) {
    auto* self = static_cast<BundleReader*>(user);
    try {
      auto chunk = self->plain->read();
      *buf = chunk.data();
      return static_cast<la_ssize_t>(chunk.size());
    } catch (const std::exception& e) {
      self->err = std::current_exception();
      archive_set_error(ar, EIO, "%s", e.what());
      return -1;
    }
  }
};

[[noreturn]] void unsafe(const std::string& bundle, const std::string& entry, const std::string& why) {
  throw Error("EUNSAFE", "bundle " + bundle + ": entry '" + entry + "': " + why);
}

}  // namespace

std::string host_arch() {
  struct utsname u {};
  if (::uname(&u) != 0) throw Error::last("uname");
  return u.machine;
}

ExportResult export_bundle(const std::string& kernels_dir, const std::string& name, const std::string& out_dir,
                           int level) {
  nlohmann::json m = show_kernel(kernels_dir, name);
  std::string dir = m["dir"].get<std::string>();
  std::string arch = m.value("arch", "");
  bool arch_ok = !arch.empty() && arch.size() <= 32 && std::all_of(arch.begin(), arch.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!arch_ok) throw Error("EINVAL", "kernel '" + name + "': manifest has no valid arch");
  std::string want_sha = m.value("sha256", "");

  ExportResult r;
  r.path = out_dir + "/" + name + "-" + arch + ".tar.zst";
  BundleWriter w(r.path, level);
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  if (!a) throw Error("ENOMEM", "archive_write_new");
  archive_write_set_format_pax_restricted(a.get());
  archive_write_add_filter_none(a.get());
  if (archive_write_open(a.get(), &w, nullptr, BundleWriter::write_cb, nullptr) != ARCHIVE_OK) fail(a.get(), r.path);
  auto guarded = [&](auto&& step) {
    try {
      step();
    } catch (const Error&) {
      if (w.err) std::rethrow_exception(w.err);  // the real cause (ENOSPC, ...), not libarchive's echo
      throw;
    }
  };
  Sha256 vmlinux_hash;
  guarded([&] {
    add_file(a.get(), dir + "/manifest.json", "manifest.json", nullptr);
    add_file(a.get(), dir + "/vmlinux", "vmlinux", &vmlinux_hash);
    add_file(a.get(), dir + "/initrd.img", "initrd.img", nullptr);
    if (archive_write_close(a.get()) != ARCHIVE_OK) fail(a.get(), r.path);
  });
  std::string got = vmlinux_hash.hex();
  if (got != want_sha) {
    throw Error("EDIGEST", "kernel '" + name + "': vmlinux sha256 is " + got + ", its manifest says " + want_sha);
  }
  w.zstd.finish();
  w.file.commit();
  r.size = w.size;
  r.sha256 = w.hash.hex();
  m.erase("dir");
  r.manifest = std::move(m);
  return r;
}

nlohmann::json import_bundle(const BundleImportOptions& o) {
  validate_name(o.name);
  check_free(o.kernels_dir, o.name, o.replace);
  BundleReader reader(o.bundle);
  StagingDir tmp(o.kernels_dir, o.name, ".pull");
  UniqueFd dirfd(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) throw Error::last("open", tmp.path());

  std::map<std::string, bool> seen;
  std::string manifest_text;
  Sha256 vmlinux_hash;
  archive_entry* e = nullptr;
  std::vector<char> buf(1 << 20);
  for (;;) {
    cancel::check();
    int rc = archive_read_next_header(reader.a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) reader.fail_read();
    std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    const Member* mem = member(name);
    if (!mem) unsafe(o.bundle, name, "a bundle holds only manifest.json, vmlinux and initrd.img");
    if (archive_entry_hardlink(e) || archive_entry_symlink(e) || archive_entry_filetype(e) != AE_IFREG) {
      unsafe(o.bundle, name, "not a regular file");
    }
    if (seen[name]) unsafe(o.bundle, name, "appears twice");
    seen[name] = true;
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        static_cast<std::uint64_t>(archive_entry_size(e)) > mem->max_bytes) {
      throw Error("EFBIG", "bundle " + o.bundle + ": entry '" + name + "' is larger than the allowed " +
                               std::to_string(mem->max_bytes) + " bytes");
    }
    bool is_manifest = name == "manifest.json";
    UniqueFd out;
    if (!is_manifest) {
      // O_EXCL|O_NOFOLLOW in a directory made for this pull: nothing can be
      // there to be written through.
      out.reset(::openat(dirfd.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!out) throw Error::last("create", tmp.path() + "/" + name);
    }
    std::uint64_t total = 0;
    for (;;) {
      cancel::check();
      la_ssize_t n = archive_read_data(reader.a.get(), buf.data(), buf.size());
      if (n < 0) reader.fail_read();
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
      if (total > mem->max_bytes) {
        throw Error("EFBIG", "bundle " + o.bundle + ": entry '" + name + "' is larger than the allowed " +
                                 std::to_string(mem->max_bytes) + " bytes");
      }
      std::string_view chunk(buf.data(), static_cast<size_t>(n));
      if (is_manifest) {
        manifest_text.append(chunk);
      } else {
        if (name == "vmlinux") vmlinux_hash.update(chunk);
        write_all(out.get(), chunk, tmp.path() + "/" + name);
      }
    }
    if (out && ::fsync(out.get()) != 0) throw Error::last("fsync", tmp.path() + "/" + name);
  }
  reader.drain();
  for (const auto& m : kMembers) {
    if (!seen[m.name]) throw Error("EINVAL", "bundle " + o.bundle + " has no " + m.name);
  }

  auto m = nlohmann::json::parse(manifest_text, nullptr, false);
  if (m.is_discarded() || !m.is_object()) throw Error("EINVAL", "bundle " + o.bundle + ": manifest.json is not a JSON object");
  auto str = [&](const char* key) {
    auto it = m.find(key);
    if (it == m.end() || !it->is_string()) {
      throw Error("EINVAL", "bundle " + o.bundle + ": manifest.json has no " + key);
    }
    return it->get<std::string>();
  };
  std::string arch = str("arch"), here = host_arch();
  if (arch != here) throw Error("EINVAL", "bundle " + o.bundle + " is for " + arch + ", this host is " + here);
  str("version");
  std::string want = str("sha256"), got = vmlinux_hash.hex();
  if (got != want) {
    throw Error("EDIGEST", "bundle " + o.bundle + ": vmlinux sha256 is " + got + ", its manifest says " + want);
  }
  m["name"] = o.name;
  m["source"] = o.origin.empty() ? o.bundle : o.origin;
  m["source_kind"] = "bundle";
  m["imported_at"] = utc_now();
  m.erase("dir");
  atomic_write_file(tmp.path() + "/manifest.json", m.dump(2) + "\n", 0644);
  tmp.publish(o.replace);
  return m;
}

}  // namespace banger::kernel
