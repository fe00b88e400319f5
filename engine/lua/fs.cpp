// banger.native.fs: host file-system primitives the recipes need beyond
// Lua's io library. Nothing here follows a symlink unless it says so.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "engine/core/atomic_file.hpp"
#include "engine/core/file_lock.hpp"
#include "engine/core/paths.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/unique_fd.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
template <>
struct HandleTraits<FileLock> {
  static constexpr const char* name = "banger.fs.lock";
  static std::string describe(const FileLock& l) { return l.path(); }
};

namespace {

const char* type_name(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISCHR(m)) return "char";
  if (S_ISBLK(m)) return "block";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  return "unknown";
}

int push_stat(lua_State* L, const std::string& path, bool follow) {
  struct stat st {};
  int rc = follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  if (rc != 0) throw Error::last(follow ? "stat" : "lstat", path);
  lua_createtable(L, 0, 9);
  set_field(L, "type", type_name(st.st_mode));
  set_field(L, "mode", static_cast<lua_Integer>(st.st_mode & 07777));
  set_field(L, "uid", static_cast<lua_Integer>(st.st_uid));
  set_field(L, "gid", static_cast<lua_Integer>(st.st_gid));
  set_field(L, "size", static_cast<lua_Integer>(st.st_size));
  set_field(L, "blocks_bytes", static_cast<lua_Integer>(st.st_blocks) * 512);
  set_field(L, "mtime", static_cast<lua_Integer>(st.st_mtim.tv_sec));
  set_field(L, "ino", static_cast<lua_Integer>(st.st_ino));
  // with ino, names a file: hard links are counted once (banger.status)
  set_field(L, "dev", static_cast<lua_Integer>(st.st_dev));
  return 1;
}

int l_stat(lua_State* L) { return push_stat(L, check_string(L, 1), true); }
int l_lstat(lua_State* L) { return push_stat(L, check_string(L, 1), false); }

// statvfs(path) -> {size=, free=, avail=} in bytes (avail: what an
// unprivileged user may use).
int l_statvfs(lua_State* L) {
  std::string path = check_string(L, 1);
  struct statvfs v {};
  if (::statvfs(path.c_str(), &v) != 0) throw Error::last("statvfs", path);
  lua_createtable(L, 0, 3);
  set_field(L, "size", static_cast<lua_Integer>(v.f_blocks * v.f_frsize));
  set_field(L, "free", static_cast<lua_Integer>(v.f_bfree * v.f_frsize));
  set_field(L, "avail", static_cast<lua_Integer>(v.f_bavail * v.f_frsize));
  return 1;
}

int l_exists(lua_State* L) {
  struct stat st {};
  lua_pushboolean(L, ::lstat(check_string(L, 1).c_str(), &st) == 0);
  return 1;
}

int l_mkdir(lua_State* L) {
  std::string path = check_string(L, 1);
  auto mode = opt_int<mode_t>(L, 2, 0, kMaxMode).value_or(0755);
  bool parents = opt_boolean(L, 3, false);
  if (parents) {
    std::filesystem::path cur;
    for (const auto& part : std::filesystem::path(path)) {
      cur /= part;
      if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) throw Error::last("mkdir", cur.string());
    }
  } else if (::mkdir(path.c_str(), mode) != 0) {
    throw Error::last("mkdir", path);
  }
  lua_pushboolean(L, 1);
  return 1;
}

// A directory only we can enter: see paths::ensure_private_dir.
int l_mkdir_private(lua_State* L) {
  paths::ensure_private_dir(check_string(L, 1));
  lua_pushboolean(L, 1);
  return 1;
}

int l_list(lua_State* L) {
  std::string path = check_string(L, 1);
  DIR* d = ::opendir(path.c_str());
  if (!d) throw Error::last("opendir", path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  push_string_list(L, names);
  return 1;
}

int l_read(lua_State* L) {
  push_string(L, read_file(check_string(L, 1)));
  return 1;
}

int l_write_atomic(lua_State* L) {
  std::string path = check_string(L, 1);
  std::string data = check_string(L, 2);
  auto mode = opt_int<mode_t>(L, 3, 0, kMaxMode).value_or(0600);
  atomic_write_file(path, data, mode);
  lua_pushboolean(L, 1);
  return 1;
}

// publish(temp, path): a finished file moved into place durably (fsync,
// rename, directory fsync): after a crash `path` is the old file or the new.
int l_publish(lua_State* L) {
  std::string temp = check_string(L, 1), path = check_string(L, 2);
  publish_file(temp, path);
  lua_pushboolean(L, 1);
  return 1;
}

// syncfs(path): everything written to the file system holding `path`
// (a tree just unpacked, a renamed symlink) reaches the disk.
int l_syncfs(lua_State* L) {
  std::string path = check_string(L, 1);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw Error::last("open", path);
  if (::syncfs(fd.get()) != 0) throw Error::last("syncfs", path);
  lua_pushboolean(L, 1);
  return 1;
}

int l_remove(lua_State* L) {
  std::string path = check_string(L, 1);
  if (::remove(path.c_str()) != 0) throw Error::last("remove", path);
  lua_pushboolean(L, 1);
  return 1;
}

// rm -r that never follows symlinks (std::filesystem::remove_all removes a
// symlink itself, not its target). Returns the number of entries removed.
int l_remove_tree(lua_State* L) {
  std::string path = check_string(L, 1);
  std::error_code ec;
  auto n = std::filesystem::remove_all(path, ec);
  if (ec) throw Error::sys(ec.value(), "remove", path);
  lua_pushinteger(L, static_cast<lua_Integer>(n));
  return 1;
}

int l_rename(lua_State* L) {
  std::string from = check_string(L, 1), to = check_string(L, 2);
  if (::rename(from.c_str(), to.c_str()) != 0) throw Error::last("rename", from + " -> " + to);
  lua_pushboolean(L, 1);
  return 1;
}

int l_chmod(lua_State* L) {
  std::string path = check_string(L, 1);
  auto mode = check_int<mode_t>(L, 2, 0, kMaxMode);
  // fchmodat without following: refuse to chmod through a symlink.
  UniqueFd fd(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw Error::last("open", path);
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISLNK(st.st_mode)) throw Error("ELOOP", "chmod: refusing a symlink: " + path);
  if (::chmod(proc.c_str(), mode) != 0) throw Error::last("chmod", path);
  lua_pushboolean(L, 1);
  return 1;
}

int l_realpath(lua_State* L) {
  std::string path = check_string(L, 1);
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) throw Error::last("realpath", path);
  lua_pushstring(L, r);
  std::free(r);
  return 1;
}

int l_readlink(lua_State* L) {
  std::string path = check_string(L, 1);
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  if (ec) throw Error::sys(ec.value(), "readlink", path);
  push_string(L, target.string());
  return 1;
}

int l_symlink(lua_State* L) {
  std::string target = check_string(L, 1), path = check_string(L, 2);
  if (::symlink(target.c_str(), path.c_str()) != 0) throw Error::last("symlink", path);
  lua_pushboolean(L, 1);
  return 1;
}

// mkdtemp under `dir` (default $TMPDIR or /tmp) with a 0700 directory.
int l_mkdtemp(lua_State* L) {
  std::string prefix = opt_string(L, 1).value_or("banger-");
  std::string dir = opt_string(L, 2).value_or("");
  if (dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    dir = t && *t ? t : "/tmp";
  }
  std::string tmpl = dir + "/" + prefix + "XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw Error::last("mkdtemp", tmpl);
  push_string(L, tmpl);
  return 1;
}

int l_cwd(lua_State* L) {
  std::error_code ec;
  auto p = std::filesystem::current_path(ec);
  if (ec) throw Error::sys(ec.value(), "getcwd");
  push_string(L, p.string());
  return 1;
}

// lock(path, {shared=false, timeout_ms=nil}) -> lock handle; release with
// :close() or a <close> variable, or :remove() to unlink the file as well.
int l_lock(lua_State* L) {
  std::string path = check_string(L, 1);
  bool shared = field_boolean(L, 2, "shared").value_or(false);
  auto timeout = field_int<lua_Integer>(L, 2, "timeout_ms", 0);
  push_handle(L, std::make_unique<FileLock>(path, !shared,
                                            timeout ? std::optional(std::chrono::milliseconds(*timeout)) : std::nullopt));
  return 1;
}

// lock:remove(): unlinks the lock file while holding it, then releases it
// (a lock for something that no longer exists leaves no file behind).
int l_lock_remove(lua_State* L) {
  Box<FileLock>* box = check_box<FileLock>(L, 1);
  if (box->ptr) {
    std::unique_ptr<FileLock> lock = std::move(box->ptr);
    lock->remove();
  }
  lua_pushboolean(L, 1);
  return 1;
}

int open_fs(lua_State* L) {
  static const luaL_Reg lock_methods[] = {{"remove", protect<l_lock_remove>}, {nullptr, nullptr}};
  define_handle<FileLock>(L, lock_methods);
  static const luaL_Reg fns[] = {{"stat", protect<l_stat>},
                                 {"lstat", protect<l_lstat>},
                                 {"exists", protect<l_exists>},
                                 {"statvfs", protect<l_statvfs>},
                                 {"mkdir", protect<l_mkdir>},
                                 {"mkdir_private", protect<l_mkdir_private>},
                                 {"list", protect<l_list>},
                                 {"read", protect<l_read>},
                                 {"write_atomic", protect<l_write_atomic>},
                                 {"publish", protect<l_publish>},
                                 {"syncfs", protect<l_syncfs>},
                                 {"remove", protect<l_remove>},
                                 {"remove_tree", protect<l_remove_tree>},
                                 {"rename", protect<l_rename>},
                                 {"chmod", protect<l_chmod>},
                                 {"realpath", protect<l_realpath>},
                                 {"readlink", protect<l_readlink>},
                                 {"symlink", protect<l_symlink>},
                                 {"mkdtemp", protect<l_mkdtemp>},
                                 {"cwd", protect<l_cwd>},
                                 {"lock", protect<l_lock>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(fs, open_fs);
}  // namespace banger::lua
