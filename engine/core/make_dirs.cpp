#include "engine/core/make_dirs.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "engine/core/error.hpp"

namespace banger {

void make_dirs(const std::string& path, mode_t mode, bool refuse_symlink) {
  if (path.empty()) throw Error("EINVAL", "mkdir: empty path");
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    std::string part = path.substr(0, end);
    if (!part.empty() && part.back() != '/' && ::mkdir(part.c_str(), mode) != 0 && errno != EEXIST)
      throw Error::last("mkdir", part);
    if (end == std::string::npos) break;
  }
  struct stat st {};
  int rc = refuse_symlink ? ::lstat(path.c_str(), &st) : ::stat(path.c_str(), &st);
  if (rc != 0) throw Error::last("stat", path);
  if (refuse_symlink && !S_ISDIR(st.st_mode)) throw Error("EUNSAFE", path + " is not a directory (a symlink?)");
  if (!S_ISDIR(st.st_mode)) throw Error("ENOTDIR", path + " is not a directory");
}

}  // namespace banger
