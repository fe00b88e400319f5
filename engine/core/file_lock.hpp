#pragma once
// Advisory locks on lock files (flock). banger locks per VM, never globally:
// two commands on different VMs never wait for each other. The kernel drops
// a flock when its holder dies, so a crashed banger never leaves a VM locked.
#include <chrono>
#include <optional>
#include <string>

#include "engine/core/unique_fd.hpp"

namespace banger {

class FileLock {
 public:
  // Opens (creating 0600, never through a symlink) and locks `path`.
  // With a timeout, gives up with EBUSY when it passes; nullopt waits forever
  // (still interruptible by Ctrl-C). The lock is held on the file the path
  // names when it returns: one removed meanwhile is opened again.
  FileLock(const std::string& path, bool exclusive, std::optional<std::chrono::milliseconds> timeout);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  const std::string& path() const { return path_; }
  void unlock();
  // Unlinks the lock file while still holding it, then unlocks: a waiter
  // that gets the old file sees it is gone and takes a new one.
  void remove();

 private:
  std::string path_;
  UniqueFd fd_;  // closing it releases the flock
};

}  // namespace banger
