#pragma once
// Crash-safe file replacement: the content goes to a temporary file in the
// same directory (created O_EXCL, never through a symlink), is fsynced, and
// is renamed over the target; the directory is fsynced so the rename itself
// survives a crash. Readers see the old file or the new one, never a mix.
#include <string>
#include <string_view>
#include <sys/types.h>

#include "engine/core/unique_fd.hpp"

namespace banger {

void atomic_write_file(const std::string& path, std::string_view content, mode_t mode = 0600);

// For writers that produce content incrementally (downloads, images).
class AtomicFile {
 public:
  AtomicFile(const std::string& path, mode_t mode = 0600);
  ~AtomicFile();  // discards the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return temp_; }
  void write(std::string_view data);
  void commit();  // fsync, rename over the target, fsync the directory

 private:
  std::string path_;
  std::string temp_;
  UniqueFd fd_;
  bool committed_ = false;
};

// fsync a directory (after creating or renaming entries in it).
void fsync_dir(const std::string& dir);

// Publishes a file another writer finished at `temp` (a child process,
// libext2fs) the same way: fsync it, rename it to `path` (with no_replace,
// only onto a missing name, else EEXIST), fsync the directory. A crash at
// any point leaves `path` as it was or as the complete new file.
void publish_file(const std::string& temp, const std::string& path, bool no_replace = false);

// Swaps two existing paths in one step (renameat2 RENAME_EXCHANGE), then
// fsyncs their directories. To replace a directory tree: build the new one
// beside it, exchange, remove the old one, now at the new one's former name;
// the target names the old tree or the new one at every instant, never nothing.
void exchange_paths(const std::string& a, const std::string& b);

}  // namespace banger
