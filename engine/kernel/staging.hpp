#pragma once
// A kernel directory being built (by an import or a bundle pull): a hidden
// temporary directory beside the catalog, given the kernel's name only by
// publish(). Anything not published is removed, so a failed or interrupted
// build leaves nothing and a reader never sees half a kernel.
//
// A process killed outright cannot remove its own: each staging directory is
// flocked by its maker for as long as it lives, and making a new one first
// removes every staging directory nobody holds (the kernel drops a dead
// process's flock). Making and sweeping hold a flock on the kernels directory
// itself, so a sweep never sees a directory whose maker has not locked it yet.
#include <string>

#include "engine/core/unique_fd.hpp"

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
  UniqueFd held_;  // the directory, flocked: it is in use
  bool published_ = false;
};

// Removes the staging directories (and files) in `kernels_dir` whose maker
// is gone; returns how many. StagingDir does this before making its own.
int sweep_staging(const std::string& kernels_dir);

// EEXIST unless `replace` or no kernel `name` exists yet (checked before
// work starts; publish() checks again).
void check_free(const std::string& kernels_dir, const std::string& name, bool replace);

}  // namespace banger::kernel
