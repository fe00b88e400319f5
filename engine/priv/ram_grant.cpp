#include "engine/priv/ram_grant.hpp"

#include <acl/libacl.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/log.hpp"

namespace banger::priv {

RamGrant::RamGrant(int fd, uid_t uid, const std::string& what) : fd_(fd), what_(what) {
  acl_t acl = acl_get_fd(fd);
  if (!acl) throw Error::last("acl_get_fd", what);
  acl_t grant = acl_dup(acl);
  if (!grant) {
    acl_free(acl);
    throw Error::last("acl_dup", what);
  }
  acl_entry_t e;
  acl_permset_t perms;
  bool ok = acl_create_entry(&grant, &e) == 0 && acl_set_tag_type(e, ACL_USER) == 0 &&
            acl_set_qualifier(e, &uid) == 0 && acl_get_permset(e, &perms) == 0 && acl_clear_perms(perms) == 0 &&
            acl_add_perm(perms, ACL_READ) == 0 && acl_add_perm(perms, ACL_WRITE) == 0 &&
            acl_set_permset(e, perms) == 0 && acl_calc_mask(&grant) == 0;
  if (!ok || acl_set_fd(fd, grant) != 0) {
    int e_ = errno;
    acl_free(grant);
    acl_free(acl);
    if (e_ == EOPNOTSUPP) {
      throw Error("EOPNOTSUPP", what + ": its filesystem has no POSIX ACLs, which an isolated VM's RAM file needs");
    }
    throw Error::sys(e_, "grant the VMM uid access", what);
  }
  acl_free(grant);
  saved_ = acl;
}

RamGrant::~RamGrant() { restore(); }

void RamGrant::restore() noexcept {
  if (!saved_) return;
  // A minimal ACL is stored as the mode bits again (the kernel drops the
  // xattr), so the file is exactly as it was.
  if (acl_set_fd(fd_, static_cast<acl_t>(saved_)) != 0) {
    log::write(log::Level::warn, "helper", "could not restore the ACL of " + what_ + ": " + std::to_string(errno));
  }
  acl_free(saved_);
  saved_ = nullptr;
}

bool wait_for_mapping(pid_t pid, int fd, std::chrono::milliseconds timeout) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  const std::string maps = "/proc/" + std::to_string(pid) + "/maps";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream f(maps);
    if (!f) return false;  // gone
    std::string line;
    bool any = false;
    while (std::getline(f, line)) {
      any = true;
      // address perms offset major:minor inode path
      unsigned maj = 0, min = 0;
      unsigned long long ino = 0;
      if (std::sscanf(line.c_str(), "%*s %*s %*s %x:%x %llu", &maj, &min, &ino) == 3 && ino == st.st_ino &&
          maj == major(st.st_dev) && min == minor(st.st_dev)) {
        return true;
      }
    }
    if (!any) return false;  // a zombie has no mappings
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace banger::priv
