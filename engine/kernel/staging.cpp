#include "engine/kernel/staging.hpp"

#include <cerrno>
#include <cstdio>
#include <filesystem>

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

StagingDir::StagingDir(const std::string& kernels_dir, const std::string& name, const std::string& stem)
    : kernels_dir_(kernels_dir), name_(name) {
  make_dirs(kernels_dir, 0755);
  path_ = temp_name(kernels_dir + "/" + stem + "-" + name + "-");
  fs::create_directory(path_);
  fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
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
