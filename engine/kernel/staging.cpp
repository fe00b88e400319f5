#include "engine/kernel/staging.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/core/make_dirs.hpp"
#include "engine/core/temp_name.hpp"

namespace banger::kernel {
namespace fs = std::filesystem;

void check_free(const std::string& kernels_dir, const std::string& name, bool replace) {
  std::error_code ec;
  if (!replace && fs::exists(fs::path(kernels_dir) / name, ec)) {
    throw Error("EEXIST", "a kernel named '" + name + "' already exists");
  }
}

namespace {

// What staging names start with: StagingDir's stems, and the files the Lua
// pull of older versions downloaded beside the catalog.
bool is_staging_name(std::string_view n) { return n.starts_with(".import-") || n.starts_with(".pull-"); }

// Making and sweeping take an exclusive flock on the kernels directory
// itself (no lock file to leave behind); both are short.
UniqueFd lock_catalog(const std::string& kernels_dir) {
  UniqueFd fd(::open(kernels_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw Error::last("open", kernels_dir);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw Error::last("lock", kernels_dir);
  }
  return fd;
}

int sweep_locked(const std::string& kernels_dir) {
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(kernels_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string path = it->path().string();
    if (!is_staging_name(it->path().filename().string())) continue;
    // O_NOFOLLOW: a symlink planted under a staging name is not followed
    // (open fails) and is left alone.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) continue;
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // its maker is alive
    std::error_code rm;
    if (fs::remove_all(path, rm) > 0 && !rm) ++removed;
  }
  return removed;
}

}  // namespace

int sweep_staging(const std::string& kernels_dir) {
  std::error_code ec;
  if (!fs::is_directory(kernels_dir, ec)) return 0;
  UniqueFd guard = lock_catalog(kernels_dir);
  return sweep_locked(kernels_dir);
}

StagingDir::StagingDir(const std::string& kernels_dir, const std::string& name, const std::string& stem)
    : kernels_dir_(kernels_dir), name_(name) {
  make_dirs(kernels_dir, 0755);
  UniqueFd guard = lock_catalog(kernels_dir);
  sweep_locked(kernels_dir);
  path_ = temp_name(kernels_dir + "/" + stem + "-" + name + "-");
  fs::create_directory(path_);
  fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  held_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!held_ || ::flock(held_.get(), LOCK_EX | LOCK_NB) != 0) {
    Error e = Error::last("lock", path_);
    std::error_code rm;
    fs::remove_all(path_, rm);
    throw e;
  }
}

StagingDir::~StagingDir() {
  std::error_code ec;
  if (!published_) fs::remove_all(path_, ec);
}

void StagingDir::publish(bool replace) {
  fs::path final_dir = fs::path(kernels_dir_) / name_;
  std::error_code ec;
  if (replace && fs::exists(final_dir, ec)) {
    // One step: the name holds the old kernel until it holds the new one.
    // The old one is then at path_, which the destructor removes.
    exchange_paths(path_, final_dir.string());
    return;
  }
  // rename(2) onto a missing name: a concurrent import of the same name
  // makes one of the two fail here instead of mixing files.
  if (::rename(path_.c_str(), final_dir.c_str()) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) throw Error("EEXIST", "a kernel named '" + name_ + "' already exists");
    throw Error::last("rename", final_dir.string());
  }
  published_ = true;
  fsync_dir(kernels_dir_);
}

}  // namespace banger::kernel
