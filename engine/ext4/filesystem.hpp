#pragma once
// ext4 images as files: banger builds and provisions root and work disks
// without root, without mounting. Everything goes through libext2fs on the
// unmounted image, making the empty filesystem included (mkfs.cpp);
// resize2fs grows and fits it (resize.cpp).
//
// Paths inside the image are absolute ("/root/.ssh/authorized_keys") and
// resolved component by component without following symlinks: a symlink on
// the way is an EUNSAFE error, so a hostile image cannot redirect a write to
// somewhere else in the image.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace banger::ext4 {

struct Owner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t mode = 0644;  // permission bits incl. setuid/setgid/sticky
  static constexpr std::int64_t now = INT64_MIN;  // an mtime meaning "when written"
  std::int64_t mtime = now;   // seconds since the epoch; before 1970 is negative
  std::uint32_t mtime_nsec = 0;
};

struct Stat {
  std::string type;  // file, directory, symlink, char, block, fifo, socket
  std::uint32_t mode = 0;  // permission bits
  std::uint32_t uid = 0, gid = 0;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::uint32_t mtime_nsec = 0;
  std::uint32_t nlink = 0;
  std::uint32_t ino = 0;
  std::uint32_t rdev_major = 0, rdev_minor = 0;  // char and block devices
  std::string target;  // symlinks
};

// Makes an empty ext4 filesystem of `size_bytes` in a new or truncated file
// (sparse), root directory owned by root: what mkfs.ext4 -b 4096 -m 0 makes
// with Debian 12's defaults, without running it. Without a journal when asked: an
// image that is filled, then resized, gets its journal at the end
// (Filesystem::add_journal), sized for its final size.
void mkfs(const std::string& path, std::uint64_t size_bytes, const std::string& label = {}, bool journal = true);

// Grows the unmounted image file at `path` and its filesystem to `bytes`
// (whole KiB), keeping its content; a filesystem a guest used is checked
// (e2fsck -fp) first. Never shrinks: EINVAL when `bytes` is below the
// file's or the filesystem's size. Returns the filesystem's new size
// (resize.cpp; the order of its steps is crash-safe, see there).
std::uint64_t grow(const std::string& path, std::uint64_t bytes);

class Filesystem {
 public:
  // Fills `buf` with up to `cap` bytes of a file's content; returns how many.
  using Reader = std::function<size_t(char* buf, size_t cap)>;

  static std::unique_ptr<Filesystem> open(const std::string& path, bool writable);
  // mkfs() and open(path, true) in one: the new filesystem stays open, so
  // what is written into it goes to disk with it, in one flush at close()
  // (no second open, which libext2fs begins with an fsync).
  static std::unique_ptr<Filesystem> create(const std::string& path, std::uint64_t size_bytes,
                                            const std::string& label = {}, bool journal = true);
  ~Filesystem();  // closes, flushing when writable (errors are lost: call close())
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  void close();  // flush and close; reports write errors
  const std::string& path() const { return path_; }

  std::optional<Stat> stat(std::string_view path);  // never follows a final symlink
  bool exists(std::string_view path) { return stat(path).has_value(); }
  std::string read(std::string_view path);
  std::vector<std::string> list(std::string_view path);

  // Writes a regular file. An existing file is replaced by a new inode whose
  // data is complete before the directory entry switches to it.
  void write(std::string_view path, std::string_view data, const Owner& owner);
  void mkdir(std::string_view path, const Owner& owner, bool parents);
  void symlink(std::string_view target, std::string_view path, const Owner& owner);
  // Streams a regular file of exactly `size` bytes from `read`, for files
  // too big to hold in memory. The blocks are allocated in one go and the
  // data written in large runs; `read` ending early is an EIO error (and
  // whatever it throws propagates), leaving the image as it was.
  void write_from(std::string_view path, const Owner& owner, std::uint64_t size, const Reader& read);
  void hardlink(std::string_view existing, std::string_view path);
  // type: 'c' char device, 'b' block device, 'p' fifo.
  void mknod(std::string_view path, char type, std::uint32_t major, std::uint32_t minor, const Owner& owner);
  void set_xattr(std::string_view path, const std::string& name, std::string_view value);
  std::string get_xattr(std::string_view path, const std::string& name);
  // Every extended attribute of `path` as {name, value}, sorted by name
  // (values as getxattr(2) gives them: POSIX ACLs in their Linux form).
  std::vector<std::pair<std::string, std::string>> xattrs(std::string_view path);
  // Sets owner, permission bits and mtime of an existing entry at once.
  void set_owner(std::string_view path, const Owner& owner);

  // Visits every entry of the image once, depth first, each directory
  // before its content and names in byte order, so a walk is reproducible;
  // the root itself comes first as "/". Symlinks are not followed.
  using Visitor = std::function<void(const std::string& path, const Stat& st)>;
  void walk(const Visitor& visit);
  // Streams a regular file's content in chunks of up to 1 MiB, for files
  // too big to hold in memory.
  void read_to(std::string_view path, const std::function<void(const char* data, size_t len)>& sink);
  // The path with every directory component's symlinks resolved inside the
  // image (absolute targets start at the image root, '..' stops at it), the
  // way a container runtime extracts layers; the last component is kept.
  std::string resolve_in_image(std::string_view path);
  std::uint64_t free_bytes() const;
  std::uint64_t free_inodes() const;
  std::uint64_t size_bytes() const;

  // Growing (resize.cpp). An image may grow, by resize2fs, up to `max_bytes`
  // (0, the default: never). Building an image from layers whose unpacked
  // size is unknown until they are read starts from an estimate and grows
  // when a layer needs more; the result is then fitted with resize().
  void set_growth_limit(std::uint64_t max_bytes);
  // Room for `bytes` more file data and `inodes` more inodes, growing the
  // image if that is allowed and needed. False when there is not.
  bool make_room(std::uint64_t bytes, std::uint64_t inodes = 1);
  // Resizes the filesystem (and the file) to `bytes`, but never below what
  // its content needs (resize2fs's own minimum); returns the new size.
  std::uint64_t resize(std::uint64_t bytes);
  bool has_journal() const;
  // Adds the journal mkfs would have made for the current size.
  void add_journal();
  void chown(std::string_view path, std::uint32_t uid, std::uint32_t gid);
  void chmod(std::string_view path, std::uint32_t mode);
  void remove(std::string_view path, bool recursive);

 private:
  struct Impl;
  explicit Filesystem(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace banger::ext4
