#include "engine/kernel/source.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <regex>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/read_file.hpp"
#include "engine/kernel/modinfo.hpp"

namespace banger::kernel {
namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_read_free)>;

ArchivePtr new_reader() {
  ArchivePtr a(archive_read_new(), archive_read_free);
  if (!a) throw Error("ENOMEM", "archive_read_new");
  archive_read_support_filter_all(a.get());
  archive_read_support_format_all(a.get());
  return a;
}

std::string read_entry(archive* a) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = archive_read_data(a, buf, sizeof buf);
    if (n < 0) throw Error("EIO", std::string("reading package: ") + archive_error_string(a));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Paths inside a kernel package or tree.
const std::regex kVmlinuz(R"(^(?:\./)?boot/vmlinu[xz]-(.+)$)");
const std::regex kConfig(R"(^(?:\./)?boot/config-(.+)$)");
const std::regex kModule(R"(^(?:\./)?(?:usr/)?lib/modules/([^/]+)/(.+\.ko)$)");
const std::regex kBuiltin(R"(^(?:\./)?(?:usr/)?lib/modules/([^/]+)/modules\.builtin$)");

void parse_builtin(KernelFiles& k, const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    auto slash = line.rfind('/');
    std::string file = line.substr(slash == std::string::npos ? 0 : slash + 1);
    if (file.size() > 3 && file.substr(file.size() - 3) == ".ko") k.builtin.push_back(canonical_module_name(file.substr(0, file.size() - 3)));
  }
}

// Sorts one file of a kernel tree into `k` by its path.
void take(KernelFiles& k, const std::string& path, const std::function<std::string()>& content) {
  std::smatch m;
  if (std::regex_match(path, m, kVmlinuz)) {
    k.image = content();
    k.version = m[1];
  } else if (std::regex_match(path, m, kConfig)) {
    k.config = content();
  } else if (std::regex_match(path, m, kModule)) {
    std::string ko = content();
    ModInfo info = read_modinfo(ko);
    if (!info.name.empty()) k.modules[info.name] = std::move(ko);
  } else if (std::regex_match(path, m, kBuiltin)) {
    parse_builtin(k, content());
  }
}

}  // namespace

KernelFiles read_deb(const std::string& path) {
  // A .deb is an ar archive holding data.tar.{xz,zst,gz}; the inner tar is
  // read straight from the outer stream, nothing is unpacked to disk.
  ArchivePtr outer = new_reader();
  if (archive_read_open_filename(outer.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error("EINVAL", "cannot open " + path + ": " + archive_error_string(outer.get()));
  KernelFiles k;
  k.source_kind = "deb";
  archive_entry* e = nullptr;
  bool found_data = false;
  while (archive_read_next_header(outer.get(), &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    if (name.rfind("data.tar", 0) != 0) continue;
    found_data = true;
    std::string data = read_entry(outer.get());
    ArchivePtr inner = new_reader();
    if (archive_read_open_memory(inner.get(), data.data(), data.size()) != ARCHIVE_OK)
      throw Error("EINVAL", path + ": " + name + ": " + archive_error_string(inner.get()));
    archive_entry* ie = nullptr;
    int rc;
    while ((rc = archive_read_next_header(inner.get(), &ie)) == ARCHIVE_OK) {
      cancel::check();
      if (archive_entry_filetype(ie) != AE_IFREG) continue;
      take(k, archive_entry_pathname(ie), [&] { return read_entry(inner.get()); });
    }
    if (rc != ARCHIVE_EOF) throw Error("EINVAL", path + ": " + name + ": " + archive_error_string(inner.get()));
  }
  if (!found_data) throw Error("EINVAL", path + " is not a Debian package (no data.tar member)");
  if (k.image.empty()) throw Error("EINVAL", path + " holds no boot/vmlinuz-*: not a kernel package");
  return k;
}

KernelFiles read_dir(const std::string& root) {
  namespace fs = std::filesystem;
  KernelFiles k;
  k.source_kind = "dir";
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none); it != fs::recursive_directory_iterator(); ++it) {
    cancel::check();
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), root).string();
    // A plain directory holding vmlinuz/vmlinux at its top also counts.
    if (rel == "vmlinuz" || rel == "vmlinux") {
      k.image = read_file(it->path().string());
      continue;
    }
    take(k, rel, [&] { return read_file(it->path().string()); });
  }
  if (k.image.empty()) throw Error("EINVAL", root + " holds no vmlinuz, vmlinux or boot/vmlinuz-*");
  return k;
}

KernelFiles read_image_file(const std::string& path) {
  KernelFiles k;
  k.source_kind = "file";
  k.image = read_file(path);
  std::smatch m;
  std::string base = std::filesystem::path(path).filename().string();
  static const std::regex versioned(R"(^vmlinu[xz]-(.+)$)");
  if (std::regex_match(base, m, versioned)) k.version = m[1];
  return k;
}

KernelFiles read_kernel_source(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error::last("stat", path);
  if (S_ISDIR(st.st_mode)) return read_dir(path);
  if (path.size() > 4 && path.substr(path.size() - 4) == ".deb") return read_deb(path);
  return read_image_file(path);
}

}  // namespace banger::kernel
