#include "engine/kernel/initramfs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <memory>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/core/host_tools.hpp"
#include "engine/core/read_file.hpp"
#include "engine/kernel/init_script.hpp"

namespace banger::kernel {
namespace {

class Writer {
 public:
  // The archive goes to an AtomicFile: the initramfs is fsynced before it
  // has its name (a kernel directory is renamed into place right after).
  explicit Writer(const std::string& path) : out_(path, 0644), a_(archive_write_new(), archive_write_free), path_(path) {
    if (!a_) throw Error("ENOMEM", "archive_write_new");
    archive_write_set_format_cpio_newc(a_.get());
    archive_write_add_filter_none(a_.get());
    if (archive_write_open_fd(a_.get(), out_.fd()) != ARCHIVE_OK) fail("open");
  }
  void dir(const std::string& name) { add(name, AE_IFDIR, 0755, {}, {}); }
  void file(const std::string& name, const std::string& data, mode_t mode) { add(name, AE_IFREG, mode, data, {}); }
  void symlink(const std::string& name, const std::string& target) { add(name, AE_IFLNK, 0777, {}, target); }
  void chardev(const std::string& name, unsigned maj, unsigned min, mode_t mode) {
    entry_ = archive_entry_new();
    archive_entry_set_pathname(entry_, name.c_str());
    archive_entry_set_filetype(entry_, AE_IFCHR);
    archive_entry_set_perm(entry_, mode);
    archive_entry_set_rdev(entry_, makedev(maj, min));
    archive_entry_set_size(entry_, 0);
    write_header();
  }
  void close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("close");
    out_.commit();
  }

 private:
  void add(const std::string& name, unsigned type, mode_t mode, const std::string& data, const std::string& target) {
    entry_ = archive_entry_new();
    archive_entry_set_pathname(entry_, name.c_str());
    archive_entry_set_filetype(entry_, type);
    archive_entry_set_perm(entry_, mode);
    archive_entry_set_uid(entry_, 0);
    archive_entry_set_gid(entry_, 0);
    if (type == AE_IFLNK) archive_entry_set_symlink(entry_, target.c_str());
    archive_entry_set_size(entry_, static_cast<la_int64_t>(type == AE_IFREG ? data.size() : 0));
    write_header();
    if (type == AE_IFREG && !data.empty() &&
        archive_write_data(a_.get(), data.data(), data.size()) != static_cast<la_ssize_t>(data.size()))
      fail("write " + name);
  }
  void write_header() {
    int rc = archive_write_header(a_.get(), entry_);
    archive_entry_free(entry_);
    entry_ = nullptr;
    if (rc != ARCHIVE_OK) fail("header");
  }
  [[noreturn]] void fail(const std::string& what) {
    throw Error("EIO", "initramfs " + path_ + ": " + what + ": " + archive_error_string(a_.get()));
  }
  AtomicFile out_;  // declared first: the archive, freed first, may still write to it
  std::unique_ptr<archive, decltype(&archive_write_free)> a_;
  archive_entry* entry_ = nullptr;
  std::string path_;
};

}  // namespace

const std::vector<std::string>& initramfs_applets() {
  static const std::vector<std::string> v = {"sh", "mount", "umount", "insmod", "sleep", "cat", "echo",
                                             "ip", "grep", "tr", "mkdir", "ln", "switch_root", "poweroff",
                                             "hostname", "sync"};
  return v;
}

void write_initramfs(const std::string& path, const InitramfsSpec& spec) {
  std::string busybox;
  try {
    busybox = read_file(spec.busybox);
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + ": install it with 'apt-get install " +
                              host_tools::package_of("busybox") + "'");
  }
  if (spec.agent.empty()) throw Error("EINVAL", "initramfs " + path + ": no banger-agent given");
  std::string agent;
  try {
    agent = read_file(spec.agent);
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (build the banger-agent target)");
  }
  Writer w(path);
  for (const char* d : {"bin", "dev", "proc", "sys", "etc", "etc/banger", "lib", "lib/modules", "newroot"}) w.dir(d);
  // The kernel opens /dev/console for init's stdio before devtmpfs exists.
  w.chardev("dev/console", 5, 1, 0600);
  w.file("bin/busybox", busybox, 0755);
  for (const std::string& applet : initramfs_applets()) w.symlink("bin/" + applet, "busybox");
  w.file("bin/banger-agent", agent, 0755);
  w.file("init", std::string(initramfs_init()), 0755);
  std::string list;
  for (const std::string& m : spec.modules) {
    list += m + "\n";
    auto it = spec.module_files ? spec.module_files->find(m) : decltype(spec.module_files->end()){};
    if (!spec.module_files || it == spec.module_files->end()) throw Error("ENOENT", "module " + m + " has no file");
    w.file("lib/modules/" + m + ".ko", it->second, 0644);
  }
  w.file("etc/banger/modules", list, 0644);
  w.close();
}

}  // namespace banger::kernel
