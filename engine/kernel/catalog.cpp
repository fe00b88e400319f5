#include "engine/kernel/catalog.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/sha256.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/kernel/bzimage.hpp"
#include "engine/kernel/initramfs.hpp"
#include "engine/kernel/modules.hpp"
#include "engine/kernel/source.hpp"
#include "engine/kernel/staging.hpp"

namespace banger::kernel {
namespace fs = std::filesystem;

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void validate_name(const std::string& name) {
  auto bad = [&](const std::string& why) { throw Error("EINVAL", "invalid kernel name '" + name + "': " + why); };
  if (name.empty() || name.size() > 64) bad("must be 1 to 64 characters");
  if (name[0] == '.' || name[0] == '-') bad("must not start with '.' or '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) bad("may only use letters, digits, '.', '_' and '-'");
  }
}

nlohmann::json import_kernel(const ImportOptions& o) {
  validate_name(o.name);
  check_free(o.kernels_dir, o.name, o.replace);

  KernelFiles k = read_kernel_source(o.source);
  std::string vmlinux = extract_vmlinux(k.image);
  std::vector<std::string> modules;
  if (!k.modules.empty()) modules = resolve_modules(k);

  StagingDir tmp(o.kernels_dir, o.name, ".import");
  fs::path dir = tmp.path();
  atomic_write_file((dir / "vmlinux").string(), vmlinux, 0644);
  InitramfsSpec spec;
  spec.busybox = o.busybox;
  spec.agent = o.agent;
  spec.modules = modules;
  spec.module_files = &k.modules;
  write_initramfs((dir / "initrd.img").string(), spec);

  nlohmann::json m = {{"name", o.name},
                      {"distro", o.distro},
                      {"arch", "x86_64"},
                      {"version", k.version},
                      {"sha256", sha256_hex(vmlinux)},
                      {"source", o.origin.empty() ? fs::absolute(o.source).string() : o.origin},
                      {"source_kind", k.source_kind},
                      {"modules", modules},
                      {"vmlinux_bytes", vmlinux.size()},
                      {"imported_at", utc_now()}};
  atomic_write_file((dir / "manifest.json").string(), m.dump(2) + "\n", 0644);

  // Each file was fsynced and renamed into the staging directory by
  // AtomicFile, which fsyncs the directory too: the new kernel is on disk
  // before a name points at it.
  tmp.publish(o.replace);
  return m;
}

nlohmann::json show_kernel(const std::string& kernels_dir, const std::string& name) {
  validate_name(name);
  fs::path p = fs::path(kernels_dir) / name / "manifest.json";
  std::string text;
  try {
    text = read_file(p.string());
  } catch (const Error& e) {
    if (e.code() == "ENOENT") throw Error("ENOENT", "no kernel named '" + name + "'");
    throw;
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw Error("EINVAL", "corrupt manifest " + p.string());
  j["dir"] = (fs::path(kernels_dir) / name).string();
  return j;
}

std::vector<nlohmann::json> list_kernels(const std::string& kernels_dir) {
  std::vector<nlohmann::json> out;
  std::error_code ec;
  if (!fs::is_directory(kernels_dir, ec)) return out;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kernels_dir)) {
    std::string n = e.path().filename().string();
    if (n.empty() || n[0] == '.' || !e.is_directory()) continue;
    names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    try {
      out.push_back(show_kernel(kernels_dir, n));
    } catch (const Error&) {
      // A directory without a readable manifest is not a kernel.
    }
  }
  return out;
}

void remove_kernel(const std::string& kernels_dir, const std::string& name) {
  validate_name(name);
  fs::path dir = fs::path(kernels_dir) / name;
  std::error_code ec;
  if (!fs::exists(dir / "manifest.json", ec)) throw Error("ENOENT", "no kernel named '" + name + "'");
  // Rename aside first so the name disappears atomically, then delete.
  fs::path aside = temp_name(kernels_dir + "/.rm-" + name + "-");
  fs::rename(dir, aside);
  fs::remove_all(aside, ec);
}

}  // namespace banger::kernel
