// Emptying the blob cache without disturbing a pull that is writing to it.
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "engine/core/error.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/image/cache.hpp"
#include "engine/image/reference.hpp"

namespace banger::image {
namespace fs = std::filesystem;
namespace {

PruneResult count(const std::string& dir) {
  PruneResult r;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    r.bytes += static_cast<std::uint64_t>(st.st_size);
    std::string name = it->path().filename().string();
    if (it->path().parent_path().filename() == "sha256" && valid_digest("sha256:" + name)) ++r.blobs;
  }
  return r;
}

}  // namespace

PruneResult prune(const std::string& dir_in, bool dry_run) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    throw Error::last("stat", dir);
  }
  if (!S_ISDIR(st.st_mode)) throw Error("EUNSAFE", "blob cache " + dir + " is not a directory (a symlink?)");
  if (dry_run) return count(dir);
  std::string aside = temp_name(dir + ".pruning-");
  if (::rename(dir.c_str(), aside.c_str()) != 0) throw Error::last("rename", dir);
  BlobCache fresh(dir);
  ::chmod(dir.c_str(), st.st_mode & 07777);
  PruneResult r = count(aside);
  std::error_code ec;
  fs::remove_all(aside, ec);
  if (ec) throw Error(errno_name(ec.value()), "remove " + aside + ": " + ec.message());
  return r;
}

}  // namespace banger::image
