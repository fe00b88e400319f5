#pragma once
// A kernel directory being built (by an import or a bundle pull): a hidden
// temporary directory beside the catalog, given the kernel's name only by
// publish(). Anything not published is removed, so a failed or interrupted
// build leaves nothing and a reader never sees half a kernel.
#include <string>

namespace banger::kernel {

class StagingDir {
 public:
  // `stem`: what the hidden name starts with (".import", ".pull").
  StagingDir(const std::string& kernels_dir, const std::string& name, const std::string& stem);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const std::string& path() const { return path_; }

  // Its files must already be fsynced (AtomicFile does that). Renames the
  // directory to <kernels_dir>/<name>: EEXIST when that name is taken, unless
  // `replace`, which swaps old and new in one step and removes the old.
  void publish(bool replace);

 private:
  std::string kernels_dir_;
  std::string name_;
  std::string path_;
  bool published_ = false;
};

// EEXIST unless `replace` or no kernel `name` exists yet (checked before
// work starts; publish() checks again).
void check_free(const std::string& kernels_dir, const std::string& name, bool replace);

}  // namespace banger::kernel
