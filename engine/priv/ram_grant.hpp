#pragma once
// How an isolated QEMU gets at its RAM file. memory-backend-file opens its
// mem-path with plain open() (no fdsets), so QEMU is given
// /proc/self/fd/N of the descriptor the owner passed, and that open is
// checked against the VMM uid's rights on the file itself. The narrowest
// grant that makes it work: a POSIX ACL entry for that one uid (read-write:
// QEMU 7.2 opens the file O_RDWR), added through the descriptor, and taken
// away as soon as QEMU has the file mapped. Nothing is left on the file:
// a later VM that gets the same uid has no access to it.
#include <sys/types.h>

#include <chrono>
#include <string>

namespace banger::priv {

class RamGrant {
 public:
  // Adds user:`uid`:rw to the ACL of the file behind `fd`, remembering the ACL it had.
  RamGrant(int fd, uid_t uid, const std::string& what);
  ~RamGrant();  // restore()
  RamGrant(const RamGrant&) = delete;
  RamGrant& operator=(const RamGrant&) = delete;
  // Puts the file's original ACL (and so its mode) back; idempotent.
  void restore() noexcept;

 private:
  int fd_;
  void* saved_ = nullptr;  // acl_t
  std::string what_;
};

// Waits until process `pid` has the file behind `fd` mapped (its
// /proc/<pid>/maps names that device and inode), the process is gone, or
// `timeout` passed. Returns whether it was mapped.
bool wait_for_mapping(pid_t pid, int fd, std::chrono::milliseconds timeout);

}  // namespace banger::priv
