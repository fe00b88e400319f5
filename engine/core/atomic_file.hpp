#pragma once
// Crash-safe file replacement: the content goes to a temporary file in the
// same directory (created O_EXCL, never through a symlink), is fsynced, and
// is renamed over the target; the directory is fsynced so the rename itself
// survives a crash. Readers see the old file or the new one, never a mix.
#include <string>
#include <string_view>
#include <sys/types.h>

namespace banger {

void atomic_write_file(const std::string& path, std::string_view content, mode_t mode = 0600);

// For writers that produce content incrementally (downloads, images).
class AtomicFile {
 public:
  AtomicFile(const std::string& path, mode_t mode = 0600);
  ~AtomicFile();  // discards the temporary unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  int fd() const { return fd_; }
  const std::string& temp_path() const { return temp_; }
  void write(std::string_view data);
  void commit();  // fsync, rename over the target, fsync the directory

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// fsync a directory (after creating or renaming entries in it).
void fsync_dir(const std::string& dir);

}  // namespace banger
