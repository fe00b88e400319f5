#include "engine/ext4/filesystem.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <ctime>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/ext4/impl.hpp"

namespace banger::ext4 {

void fail(errcode_t rc, const std::string& what) {
  std::string code = "EIO";
  if (rc == EXT2_ET_FILE_NOT_FOUND) code = "ENOENT";
  else if (rc == EXT2_ET_DIR_EXISTS || rc == EXT2_ET_FILE_EXISTS) code = "EEXIST";
  else if (rc == EXT2_ET_BLOCK_ALLOC_FAIL || rc == EXT2_ET_INODE_ALLOC_FAIL) code = "ENOSPC";
  else if (rc == EXT2_ET_RO_FILSYS) code = "EROFS";
  else if (rc < 256 && rc > 0) code = errno_name(static_cast<int>(rc));
  throw Error(code, what + ": " + error_message(rc));
}

std::uint32_t now32() { return static_cast<std::uint32_t>(std::time(nullptr)); }

namespace {

std::vector<std::string> components(std::string_view path) {
  if (path.empty() || path[0] != '/') throw Error("EINVAL", "image paths must be absolute: '" + std::string(path) + "'");
  if (path.size() > 4096) throw Error("ENAMETOOLONG", "image path too long");
  std::vector<std::string> out;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") throw Error("EUNSAFE", "'..' is not allowed in image paths: " + std::string(path));
    if (part.size() > 255) throw Error("ENAMETOOLONG", "name longer than 255 bytes in " + std::string(path));
    if (part.find('\0') != std::string_view::npos) throw Error("EINVAL", "NUL in image path");
    out.emplace_back(part);
  }
  return out;
}

std::string type_of(std::uint16_t mode) {
  if (LINUX_S_ISREG(mode)) return "file";
  if (LINUX_S_ISDIR(mode)) return "directory";
  if (LINUX_S_ISLNK(mode)) return "symlink";
  if (LINUX_S_ISCHR(mode)) return "char";
  if (LINUX_S_ISBLK(mode)) return "block";
  if (LINUX_S_ISFIFO(mode)) return "fifo";
  if (LINUX_S_ISSOCK(mode)) return "socket";
  return "unknown";
}

}  // namespace

Filesystem::Impl::Listing& Filesystem::Impl::listing(ext2_ino_t dir) {
  auto it = dirs.find(dir);
  if (it != dirs.end()) return it->second;
  Listing names;
  auto cb = [](ext2_ino_t, int, ext2_dir_entry* de, int, int, char*, void* priv) -> int {
    int len = ext2fs_dirent_name_len(de);
    std::string n(de->name, static_cast<size_t>(len));
    if (n != "." && n != ".." && de->inode) (*static_cast<Listing*>(priv))[n] = de->inode;
    return 0;
  };
  check(ext2fs_dir_iterate2(fs, dir, 0, nullptr, cb, &names), "read directory");
  return dirs.emplace(dir, std::move(names)).first->second;
}

ext2_inode_large Filesystem::Impl::inode(ext2_ino_t ino) {
  ext2_inode_large in{};
  check(ext2fs_read_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in), "read inode");
  return in;
}

void Filesystem::Impl::put_inode(ext2_ino_t ino, ext2_inode_large& in) {
  check(ext2fs_write_inode_full(fs, ino, reinterpret_cast<ext2_inode*>(&in), sizeof in), "write inode");
}

ext2_ino_t Filesystem::Impl::lookup(ext2_ino_t dir, const std::string& name) {
  Listing& l = listing(dir);
  auto it = l.find(name);
  return it == l.end() ? 0 : it->second;
}

std::pair<ext2_ino_t, std::string> Filesystem::Impl::parent_of(std::string_view path, const Owner* create) {
  auto parts = components(path);
  if (parts.empty()) throw Error("EINVAL", "the image root itself cannot be the target");
  ext2_ino_t dir = EXT2_ROOT_INO;
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += "/" + parts[i];
    ext2_ino_t next = lookup(dir, parts[i]);
    if (!next) {
      if (!create) throw Error("ENOENT", "no directory " + walked + " in the image");
      next = make_dir(dir, parts[i], *create);
    } else if (!dirs.count(next)) {  // a directory we hold a listing of needs no check
      ext2_inode_large in = inode(next);
      if (LINUX_S_ISLNK(in.i_mode)) throw Error("EUNSAFE", walked + " is a symlink in the image; refusing to follow it");
      if (!LINUX_S_ISDIR(in.i_mode)) throw Error("ENOTDIR", walked + " is not a directory in the image");
    }
    dir = next;
  }
  return {dir, parts.back()};
}

ext2_ino_t Filesystem::Impl::resolve(std::string_view path) {
  auto parts = components(path);
  if (parts.empty()) return EXT2_ROOT_INO;
  auto [dir, name] = parent_of(path, nullptr);
  return lookup(dir, name);
}

void Filesystem::Impl::set_owner(ext2_inode_large& in, const Owner& o, std::uint16_t type_bits) {
  in.i_mode = static_cast<std::uint16_t>(type_bits | (o.mode & 07777));
  in.i_uid = static_cast<std::uint16_t>(o.uid & 0xffff);
  ext2fs_set_i_uid_high(in, static_cast<std::uint16_t>(o.uid >> 16));
  in.i_gid = static_cast<std::uint16_t>(o.gid & 0xffff);
  ext2fs_set_i_gid_high(in, static_cast<std::uint16_t>(o.gid >> 16));
  bool now = o.mtime == Owner::now;
  std::int64_t t = now ? now32() : o.mtime;
  // ext4's extra field: nanoseconds above two epoch bits (dates past 2038).
  std::uint32_t extra = (now ? 0 : (o.mtime_nsec % 1000000000u) << 2) |
                        static_cast<std::uint32_t>(((t - static_cast<std::int32_t>(t)) >> 32) & 3);
  in.i_mtime = static_cast<std::uint32_t>(t);
  in.i_mtime_extra = extra;
  in.i_ctime = now32();
  in.i_atime = static_cast<std::uint32_t>(t);
  in.i_atime_extra = extra;
}

ext2_ino_t Filesystem::Impl::new_inode(ext2_ino_t dir, std::uint16_t type_bits) {
  ext2_ino_t ino = 0;
  check(ext2fs_new_inode(fs, dir, type_bits | 0600, nullptr, &ino), "allocate inode");
  return ino;
}

void Filesystem::Impl::link(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, int type) {
  Listing& l = listing(dir);
  errcode_t rc = ext2fs_link(fs, dir, name.c_str(), ino, type);
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    check(ext2fs_expand_dir(fs, dir), "expand directory for " + name);
    rc = ext2fs_link(fs, dir, name.c_str(), ino, type);
  }
  check(rc, "link " + name);
  l[name] = ino;
}

void Filesystem::Impl::unlink(ext2_ino_t dir, const std::string& name, ext2_ino_t ino) {
  Listing& l = listing(dir);
  check(ext2fs_unlink(fs, dir, name.c_str(), ino, 0), "unlink " + name);
  l.erase(name);
}

ext2_ino_t Filesystem::Impl::make_dir(ext2_ino_t parent, const std::string& name, const Owner& o) {
  Listing& l = listing(parent);
  // The inode is chosen here (not inside ext2fs_mkdir) so the listing learns it.
  ext2_ino_t ino = new_inode(parent, LINUX_S_IFDIR);
  errcode_t rc = ext2fs_mkdir(fs, parent, ino, name.c_str());
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    check(ext2fs_expand_dir(fs, parent), "expand directory for " + name);
    rc = ext2fs_mkdir(fs, parent, ino, name.c_str());
  }
  check(rc, "mkdir " + name);
  l[name] = ino;
  dirs[ino];  // new and empty: its listing is complete
  ext2_inode_large in = inode(ino);
  set_owner(in, o, LINUX_S_IFDIR);
  put_inode(ino, in);
  return ino;
}

void Filesystem::Impl::release(ext2_ino_t ino) {
  ext2_inode_large in = inode(ino);
  bool dir = LINUX_S_ISDIR(in.i_mode);
  if (!dir && in.i_links_count > 1) {
    in.i_links_count--;
    put_inode(ino, in);
    return;
  }
  in.i_links_count = 0;
  in.i_dtime = now32();
  if (ext2fs_inode_has_valid_blocks2(fs, reinterpret_cast<ext2_inode*>(&in)))
    check(ext2fs_punch(fs, ino, reinterpret_cast<ext2_inode*>(&in), nullptr, 0, ~0ULL), "free blocks");
  put_inode(ino, in);
  ext2fs_inode_alloc_stats2(fs, ino, -1, dir ? 1 : 0);
  forget(ino);  // the number may come back as another directory
}

void Filesystem::Impl::release_new(ext2_ino_t ino) {
  try {
    release(ino);
  } catch (const Error&) {
    // Best effort: the original error is the one to report.
  }
}

void Filesystem::Impl::remove_ino(ext2_ino_t dir, const std::string& name, ext2_ino_t ino, bool recursive,
                                  const std::string& shown) {
  ext2_inode_large in = inode(ino);
  if (LINUX_S_ISDIR(in.i_mode)) {
    const Listing& names = listing(ino);
    std::vector<std::pair<std::string, ext2_ino_t>> children(names.begin(), names.end());  // a copy: removal edits it
    if (!children.empty() && !recursive) throw Error("ENOTEMPTY", shown + " is not empty");
    for (auto& [n, c] : children) remove_ino(ino, n, c, true, shown + "/" + n);
    unlink(dir, name, ino);
    release(ino);
    ext2_inode_large parent = inode(dir);
    if (parent.i_links_count > 2) parent.i_links_count--;
    put_inode(dir, parent);
    return;
  }
  unlink(dir, name, ino);
  release(ino);
}

std::string Filesystem::Impl::read_ino(ext2_ino_t ino, const std::string& shown) {
  ext2_file_t file = nullptr;
  check(ext2fs_file_open(fs, ino, 0, &file), "open " + shown);
  std::string out;
  out.resize(ext2fs_file_get_size(file));
  size_t off = 0;
  errcode_t rc = 0;
  while (off < out.size()) {
    unsigned int got = 0;
    rc = ext2fs_file_read(file, out.data() + off, static_cast<unsigned>(std::min<size_t>(out.size() - off, 1u << 20)), &got);
    if (rc || got == 0) break;
    off += got;
  }
  errcode_t crc = ext2fs_file_close(file);
  check(rc ? rc : crc, "read " + shown);
  out.resize(off);
  return out;
}

void Filesystem::Impl::open_fs(const std::string& path) {
  int flags = EXT2_FLAG_64BITS | (writable ? EXT2_FLAG_RW : 0);
  check(ext2fs_open2(path.c_str(), nullptr, flags, 0, 0, unix_io_manager, &fs), "open ext4 image " + path);
  errcode_t rc = ext2fs_read_bitmaps(fs);
  if (rc) {
    ext2fs_close_free(&fs);
    fail(rc, "read bitmaps of " + path);
  }
}

void Filesystem::Impl::close_fs(const std::string& path) {
  dirs.clear();
  if (!fs) return;
  errcode_t rc = ext2fs_close_free(&fs);
  fs = nullptr;
  check(rc, "close " + path);
}

Filesystem::Filesystem(std::unique_ptr<Impl> impl, std::string path) : impl_(std::move(impl)), path_(std::move(path)) {}

std::unique_ptr<Filesystem> Filesystem::open(const std::string& path, bool writable) {
  initialize_ext2_error_table();
  auto impl = std::make_unique<Impl>();
  impl->writable = writable;
  impl->open_fs(path);
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(impl), path));
}

std::unique_ptr<Filesystem> Filesystem::create(const std::string& path, std::uint64_t size_bytes,
                                               const std::string& label, bool journal) {
  auto impl = std::make_unique<Impl>();
  impl->writable = true;
  impl->fs = make_filesystem(path, size_bytes, label, journal);
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(impl), path));
}

Filesystem::~Filesystem() {
  if (impl_ && impl_->fs) ext2fs_close_free(&impl_->fs);
}

void Filesystem::close() { impl_->close_fs(path_); }

Stat Filesystem::Impl::stat_ino(ext2_ino_t ino, const std::string& shown) {
  ext2_inode_large in = inode(ino);
  Stat s;
  s.type = type_of(in.i_mode);
  s.mode = in.i_mode & 07777;
  s.uid = inode_uid(in);
  s.gid = inode_gid(in);
  s.size = EXT2_I_SIZE(&in);
  s.mtime = in.i_mtime;
  if (in.i_extra_isize >= offsetof(ext2_inode_large, i_mtime_extra) + sizeof in.i_mtime_extra - EXT2_GOOD_OLD_INODE_SIZE) {
    s.mtime = static_cast<std::int32_t>(in.i_mtime) + (static_cast<std::int64_t>(in.i_mtime_extra & 3) << 32);
    s.mtime_nsec = in.i_mtime_extra >> 2;
  }
  s.nlink = in.i_links_count;
  s.ino = ino;
  if (LINUX_S_ISCHR(in.i_mode) || LINUX_S_ISBLK(in.i_mode)) {
    // The kernel's two encodings (see mknod): old 8:8 in block 0, new 12:20 in block 1.
    if (in.i_block[0]) {
      s.rdev_major = (in.i_block[0] >> 8) & 0xff;
      s.rdev_minor = in.i_block[0] & 0xff;
    } else {
      std::uint32_t d = in.i_block[1];
      s.rdev_major = (d & 0xfff00) >> 8;
      s.rdev_minor = (d & 0xff) | ((d >> 12) & 0xfff00);
    }
  }
  if (LINUX_S_ISLNK(in.i_mode)) {
    if (ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in))) {
      s.target.assign(reinterpret_cast<const char*>(in.i_block), static_cast<size_t>(s.size));
    } else {
      s.target = read_ino(ino, shown);
    }
  }
  return s;
}

std::optional<Stat> Filesystem::stat(std::string_view path) {
  ext2_ino_t ino;
  try {
    ino = impl_->resolve(path);
  } catch (const Error& e) {
    if (e.code() == "ENOENT" || e.code() == "ENOTDIR") return std::nullopt;
    throw;
  }
  if (!ino) return std::nullopt;
  return impl_->stat_ino(ino, std::string(path));
}

void Filesystem::walk(const Visitor& visit) {
  // Iterative, so a deep tree cannot exhaust the stack.
  std::vector<std::pair<std::string, ext2_ino_t>> todo = {{"/", EXT2_ROOT_INO}};
  while (!todo.empty()) {
    auto [path, ino] = std::move(todo.back());
    todo.pop_back();
    cancel::check();
    Stat st = impl_->stat_ino(ino, path);
    visit(path, st);
    if (st.type != "directory") continue;
    std::vector<std::pair<std::string, ext2_ino_t>> children(impl_->listing(ino).begin(), impl_->listing(ino).end());
    // Pushed in reverse byte order, so they are visited in order.
    std::sort(children.begin(), children.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string prefix = path == "/" ? "/" : path + "/";
    for (auto& [name, child] : children) todo.emplace_back(prefix + name, child);
  }
}

void Filesystem::read_to(std::string_view path, const std::function<void(const char*, size_t)>& sink) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  if (!LINUX_S_ISREG(impl_->inode(ino).i_mode)) throw Error("EINVAL", std::string(path) + " is not a regular file in the image");
  ext2_file_t file = nullptr;
  check(ext2fs_file_open(impl_->fs, ino, 0, &file), "open " + std::string(path));
  std::unique_ptr<ext2_file, void (*)(ext2_file_t)> closer(file, [](ext2_file_t f) { ext2fs_file_close(f); });
  std::uint64_t size = ext2fs_file_get_size(file), done = 0;
  if (impl_->data_buf.size() < (1u << 20)) impl_->data_buf.resize(1u << 20);
  while (done < size) {
    unsigned int got = 0;
    auto want = static_cast<unsigned>(std::min<std::uint64_t>(size - done, impl_->data_buf.size()));
    check(ext2fs_file_read(file, impl_->data_buf.data(), want, &got), "read " + std::string(path));
    if (got == 0) throw Error("EIO", "read " + std::string(path) + ": ended after " + std::to_string(done) + " of " + std::to_string(size) + " bytes");
    sink(impl_->data_buf.data(), got);
    done += got;
  }
}

std::string Filesystem::read(std::string_view path) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_inode_large in = impl_->inode(ino);
  if (!LINUX_S_ISREG(in.i_mode)) throw Error("EINVAL", std::string(path) + " is not a regular file in the image");
  return impl_->read_ino(ino, std::string(path));
}

std::vector<std::string> Filesystem::list(std::string_view path) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  if (!LINUX_S_ISDIR(impl_->inode(ino).i_mode)) throw Error("ENOTDIR", std::string(path) + " is not a directory");
  std::vector<std::string> names;
  for (auto& [n, child] : impl_->listing(ino)) names.push_back(n);
  std::sort(names.begin(), names.end());
  return names;
}

void Filesystem::write(std::string_view path, std::string_view data, const Owner& owner) {
  std::string_view rest = data;
  write_from(path, owner, data.size(), [&](char* buf, size_t cap) {
    size_t n = std::min(cap, rest.size());
    std::memcpy(buf, rest.data(), n);
    rest.remove_prefix(n);
    return n;
  });
}

void Filesystem::write_from(std::string_view path, const Owner& owner, std::uint64_t size, const Reader& read) {
  auto [dir, name] = impl_->parent_of(path, nullptr);
  ext2_ino_t old = impl_->lookup(dir, name);
  if (old) {
    ext2_inode_large in = impl_->inode(old);
    if (LINUX_S_ISDIR(in.i_mode)) throw Error("EISDIR", std::string(path) + " is a directory in the image");
  }
  ext2_ino_t ino = impl_->new_file_inode(dir, owner, size, read);
  if (old) {
    impl_->unlink(dir, name, old);
    impl_->release(old);
  }
  impl_->link(dir, name, ino, EXT2_FT_REG_FILE);
}

void Filesystem::hardlink(std::string_view existing, std::string_view path) {
  ext2_ino_t target = impl_->resolve(existing);
  if (!target) throw Error("ENOENT", "hardlink target " + std::string(existing) + " is not in the image");
  ext2_inode_large in = impl_->inode(target);
  if (LINUX_S_ISDIR(in.i_mode)) throw Error("EPERM", "cannot hardlink the directory " + std::string(existing));
  auto [dir, name] = impl_->parent_of(path, nullptr);
  if (impl_->lookup(dir, name)) throw Error("EEXIST", std::string(path) + " already exists in the image");
  int type = LINUX_S_ISREG(in.i_mode)   ? EXT2_FT_REG_FILE
             : LINUX_S_ISLNK(in.i_mode) ? EXT2_FT_SYMLINK
             : LINUX_S_ISCHR(in.i_mode) ? EXT2_FT_CHRDEV
             : LINUX_S_ISBLK(in.i_mode) ? EXT2_FT_BLKDEV
             : LINUX_S_ISFIFO(in.i_mode) ? EXT2_FT_FIFO
                                         : EXT2_FT_SOCK;
  impl_->link(dir, name, target, type);
  in = impl_->inode(target);
  in.i_links_count++;
  in.i_ctime = now32();
  impl_->put_inode(target, in);
}

void Filesystem::mknod(std::string_view path, char type, std::uint32_t major, std::uint32_t minor, const Owner& owner) {
  std::uint16_t bits;
  int ft;
  switch (type) {
    case 'c': bits = LINUX_S_IFCHR; ft = EXT2_FT_CHRDEV; break;
    case 'b': bits = LINUX_S_IFBLK; ft = EXT2_FT_BLKDEV; break;
    case 'p': bits = LINUX_S_IFIFO; ft = EXT2_FT_FIFO; break;
    default: throw Error("EINVAL", "mknod: unknown node type");
  }
  auto [dir, name] = impl_->parent_of(path, nullptr);
  if (impl_->lookup(dir, name)) throw Error("EEXIST", std::string(path) + " already exists in the image");
  ext2_ino_t ino = impl_->new_inode(dir, bits);
  ext2_inode_large in{};
  impl_->set_owner(in, owner, bits);
  in.i_links_count = 1;
  in.i_extra_isize = sizeof(ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  // The kernel's two device number encodings (old 8:8, new 12:20).
  if (major < 256 && minor < 256) {
    in.i_block[0] = major * 256 + minor;
  } else {
    in.i_block[1] = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
  }
  check(ext2fs_write_new_inode(impl_->fs, ino, reinterpret_cast<ext2_inode*>(&in)), "write inode");
  ext2fs_inode_alloc_stats2(impl_->fs, ino, +1, 0);
  impl_->link(dir, name, ino, ft);
}

void Filesystem::set_xattr(std::string_view path, const std::string& name, std::string_view value) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_xattr_handle* h = nullptr;
  check(ext2fs_xattrs_open(impl_->fs, ino, &h), "open xattrs of " + std::string(path));
  errcode_t rc = ext2fs_xattrs_read(h);
  if (!rc) rc = ext2fs_xattr_set(h, name.c_str(), value.data(), value.size());
  errcode_t crc = ext2fs_xattrs_close(&h);
  check(rc ? rc : crc, "set xattr " + name + " on " + std::string(path));
}

std::string Filesystem::get_xattr(std::string_view path, const std::string& name) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_xattr_handle* h = nullptr;
  check(ext2fs_xattrs_open(impl_->fs, ino, &h), "open xattrs of " + std::string(path));
  void* value = nullptr;
  size_t len = 0;
  errcode_t rc = ext2fs_xattrs_read(h);
  if (!rc) rc = ext2fs_xattr_get(h, name.c_str(), &value, &len);
  std::string out;
  if (!rc) out.assign(static_cast<const char*>(value), len);
  if (value) ext2fs_free_mem(&value);
  ext2fs_xattrs_close(&h);
  if (rc == EXT2_ET_EA_KEY_NOT_FOUND) throw Error("ENODATA", "no xattr " + name + " on " + std::string(path));
  check(rc, "get xattr " + name);
  return out;
}

std::vector<std::pair<std::string, std::string>> Filesystem::xattrs(std::string_view path) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_xattr_handle* h = nullptr;
  check(ext2fs_xattrs_open(impl_->fs, ino, &h), "open xattrs of " + std::string(path));
  std::unique_ptr<ext2_xattr_handle*, void (*)(ext2_xattr_handle**)> closer(&h, [](ext2_xattr_handle** x) { ext2fs_xattrs_close(x); });
  check(ext2fs_xattrs_read(h), "read xattrs of " + std::string(path));
  std::vector<std::string> names;
  auto collect = [](char* name, char*, size_t, void* data) -> int {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  check(ext2fs_xattrs_iterate(h, collect, &names), "list xattrs of " + std::string(path));
  std::sort(names.begin(), names.end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& n : names) {
    if (n == "system.data") continue;  // inline data's storage, not an attribute
    // Read through xattr_get, which gives ACLs in the form setxattr(2) takes.
    void* value = nullptr;
    size_t len = 0;
    check(ext2fs_xattr_get(h, n.c_str(), &value, &len), "get xattr " + n + " of " + std::string(path));
    out.emplace_back(n, std::string(static_cast<const char*>(value), len));
    ext2fs_free_mem(&value);
  }
  return out;
}

void Filesystem::set_owner(std::string_view path, const Owner& owner) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_inode_large in = impl_->inode(ino);
  impl_->set_owner(in, owner, static_cast<std::uint16_t>(in.i_mode & ~07777));
  impl_->put_inode(ino, in);
}

std::string Filesystem::resolve_in_image(std::string_view path) {
  std::vector<std::string> pending = components(path);
  if (pending.empty()) return "/";
  std::string last = pending.back();
  pending.pop_back();
  std::vector<std::string> resolved;
  std::vector<ext2_ino_t> dirs = {EXT2_ROOT_INO};
  int hops = 0;
  size_t i = 0;
  bool missing = false;
  while (i < pending.size()) {
    const std::string part = pending[i];
    if (missing) {
      resolved.push_back(part);
      ++i;
      continue;
    }
    ext2_ino_t ino = impl_->lookup(dirs.back(), part);
    if (!ino) {
      missing = true;  // the rest will be created as plain directories
      continue;
    }
    ext2_inode_large in = impl_->inode(ino);
    if (LINUX_S_ISLNK(in.i_mode)) {
      if (++hops > 40) throw Error("ELOOP", "too many symlinks resolving " + std::string(path) + " in the image");
      std::string target = ext2fs_is_fast_symlink(reinterpret_cast<ext2_inode*>(&in))
                               ? std::string(reinterpret_cast<const char*>(in.i_block), EXT2_I_SIZE(&in))
                               : impl_->read_ino(ino, part);
      std::vector<std::string> next;
      if (!target.empty() && target[0] == '/') {
        resolved.clear();
        dirs.resize(1);
      }
      // Split the target; '..' climbs but never above the image root.
      std::string_view t = target;
      while (!t.empty()) {
        size_t slash = t.find('/');
        std::string_view c = t.substr(0, slash);
        t.remove_prefix(slash == std::string_view::npos ? t.size() : slash + 1);
        if (c.empty() || c == ".") continue;
        next.emplace_back(c);
      }
      next.insert(next.end(), pending.begin() + static_cast<long>(i) + 1, pending.end());
      pending = std::move(next);
      i = 0;
      continue;
    }
    if (part == "..") {
      if (!resolved.empty()) {
        resolved.pop_back();
        dirs.pop_back();
      }
      ++i;
      continue;
    }
    if (!LINUX_S_ISDIR(in.i_mode)) throw Error("ENOTDIR", part + " is not a directory in the image");
    resolved.push_back(part);
    dirs.push_back(ino);
    ++i;
  }
  std::string out;
  for (const auto& c : resolved) out += "/" + c;
  return out + "/" + last;
}

std::uint64_t Filesystem::free_bytes() const {
  return static_cast<std::uint64_t>(ext2fs_free_blocks_count(impl_->fs->super)) * impl_->fs->blocksize;
}

std::uint64_t Filesystem::free_inodes() const { return impl_->fs->super->s_free_inodes_count; }

std::uint64_t Filesystem::size_bytes() const {
  return static_cast<std::uint64_t>(ext2fs_blocks_count(impl_->fs->super)) * impl_->fs->blocksize;
}

void Filesystem::mkdir(std::string_view path, const Owner& owner, bool parents) {
  auto [dir, name] = impl_->parent_of(path, parents ? &owner : nullptr);
  ext2_ino_t existing = impl_->lookup(dir, name);
  if (existing) {
    ext2_inode_large in = impl_->inode(existing);
    if (LINUX_S_ISDIR(in.i_mode) && parents) return;
    throw Error("EEXIST", std::string(path) + " already exists in the image");
  }
  impl_->make_dir(dir, name, owner);
}

void Filesystem::symlink(std::string_view target, std::string_view path, const Owner& owner) {
  auto [dir, name] = impl_->parent_of(path, nullptr);
  if (impl_->lookup(dir, name)) throw Error("EEXIST", std::string(path) + " already exists in the image");
  std::string t(target);
  auto& listing = impl_->listing(dir);
  // The inode is chosen here (not inside ext2fs_symlink) so the listing learns it.
  ext2_ino_t ino = impl_->new_inode(dir, LINUX_S_IFLNK);
  errcode_t rc = ext2fs_symlink(impl_->fs, dir, ino, name.c_str(), t.c_str());
  if (rc == EXT2_ET_DIR_NO_SPACE) {
    check(ext2fs_expand_dir(impl_->fs, dir), "expand directory");
    rc = ext2fs_symlink(impl_->fs, dir, ino, name.c_str(), t.c_str());
  }
  check(rc, "symlink " + std::string(path));
  listing[name] = ino;
  ext2_inode_large in = impl_->inode(ino);
  Owner o = owner;
  o.mode = 0777;
  impl_->set_owner(in, o, LINUX_S_IFLNK);
  impl_->put_inode(ino, in);
}

void Filesystem::chown(std::string_view path, std::uint32_t uid, std::uint32_t gid) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_inode_large in = impl_->inode(ino);
  in.i_uid = static_cast<std::uint16_t>(uid & 0xffff);
  ext2fs_set_i_uid_high(in, static_cast<std::uint16_t>(uid >> 16));
  in.i_gid = static_cast<std::uint16_t>(gid & 0xffff);
  ext2fs_set_i_gid_high(in, static_cast<std::uint16_t>(gid >> 16));
  in.i_ctime = now32();
  impl_->put_inode(ino, in);
}

void Filesystem::chmod(std::string_view path, std::uint32_t mode) {
  ext2_ino_t ino = impl_->resolve(path);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  ext2_inode_large in = impl_->inode(ino);
  in.i_mode = static_cast<std::uint16_t>((in.i_mode & ~07777) | (mode & 07777));
  in.i_ctime = now32();
  impl_->put_inode(ino, in);
}

void Filesystem::remove(std::string_view path, bool recursive) {
  auto [dir, name] = impl_->parent_of(path, nullptr);
  ext2_ino_t ino = impl_->lookup(dir, name);
  if (!ino) throw Error("ENOENT", "no " + std::string(path) + " in the image");
  impl_->remove_ino(dir, name, ino, recursive, std::string(path));
}

}  // namespace banger::ext4
