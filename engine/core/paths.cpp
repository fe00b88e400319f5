#include "engine/core/paths.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "engine/core/error.hpp"
#include "engine/core/make_dirs.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger::paths {
namespace {

std::string home() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  throw Error("ENOENT", "HOME is not set; cannot place banger's directories");
}

std::string xdg(const char* var, const char* fallback_under_home) {
  if (const char* v = std::getenv(var); v && *v && v[0] == '/') return v;
  return home() + "/" + fallback_under_home;
}

}  // namespace

Layout resolve() {
  Layout l;
  l.config = xdg("XDG_CONFIG_HOME", ".config") + "/banger";
  l.state = xdg("XDG_STATE_HOME", ".local/state") + "/banger";
  l.cache = xdg("XDG_CACHE_HOME", ".cache") + "/banger";
  if (const char* rt = std::getenv("XDG_RUNTIME_DIR"); rt && rt[0] == '/') {
    l.runtime = std::string(rt) + "/banger";
  } else {
    l.runtime = "/tmp/banger-runtime-" + std::to_string(::getuid());
    l.runtime_is_fallback = true;
  }
  return l;
}

void ensure_private_dir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (!parent.empty()) make_dirs(parent, 0700);
  // Created 0700 from birth: the directory is never briefly reachable.
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw Error::last("mkdir", path);
  // Check and tighten through a descriptor opened without following a
  // symlink, so a swap between the check and the chmod cannot redirect it.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR) {
      struct stat st {};
      if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        throw Error("ELOOP", "refusing " + path + ": it is a symlink");
    }
    throw Error::last("open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error::last("fstat", path);
  if (st.st_uid != ::geteuid()) {
    throw Error("EPERM", "refusing " + path + ": owned by uid " + std::to_string(st.st_uid) +
                             ", not the current user (" + std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 07777) != 0700 && ::fchmod(fd.get(), 0700) != 0) throw Error::last("chmod", path);
}

void ensure(const Layout& l) {
  for (const std::string* d : {&l.config, &l.state, &l.cache}) {
    make_dirs(*d, 0700);  // existing directories are left as they are
  }
  ensure_private_dir(l.runtime);
}

}  // namespace banger::paths

