// Root disk copies for firecracker: reflink where the filesystem can, a
// sparse copy elsewhere.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/vmm/disk_clone.hpp"
#include "test_util.hpp"

using namespace banger;
using namespace banger::vmm;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st;
}

// A 64 MiB image with 4 KiB of data at 0, 8 KiB at 40 MiB, an allocated
// but all-zero MiB at 10 MiB, and holes everywhere else.
void make_sparse_image(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  std::string a(4096, 'A'), b(8192, 'B'), zeros(1 << 20, '\0');
  REQUIRE(::pwrite(fd, a.data(), a.size(), 0) == 4096);
  REQUIRE(::pwrite(fd, zeros.data(), zeros.size(), 10 << 20) == (1 << 20));
  REQUIRE(::pwrite(fd, b.data(), b.size(), 40 << 20) == 8192);
  REQUIRE(::ftruncate(fd, 64 << 20) == 0);
  ::close(fd);
}

// What the filesystem under `dir` does with FICLONE, asked directly.
bool fs_can_reflink(const std::string& dir) {
  std::string a = dir + "/probe-a", b = dir + "/probe-b";
  std::ofstream(a) << "probe";
  int in = ::open(a.c_str(), O_RDONLY), out = ::open(b.c_str(), O_WRONLY | O_CREAT, 0600);
  bool ok = ::ioctl(out, FICLONE, in) == 0;
  ::close(in);
  ::close(out);
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  return ok;
}

long fs_type(const std::string& dir) {
  struct statfs s {};
  REQUIRE(::statfs(dir.c_str(), &s) == 0);
  return static_cast<long>(s.f_type);
}

// A temporary directory on tmpfs (/dev/shm), removed at the end.
struct ShmDir {
  std::string path;
  ShmDir() {
    char tmpl[] = "/dev/shm/banger-clone-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~ShmDir() { std::filesystem::remove_all(path); }
};

void check_sparse_clone(const std::string& dir) {
  std::string src = dir + "/image.ext4", dst = dir + "/vm-root.ext4";
  make_sparse_image(src);
  CloneResult r = clone_disk(src, dst);
  INFO("filesystem type 0x" << std::hex << fs_type(dir) << ", method " << to_string(r.method));
  CHECK(r.size == (64u << 20));
  CHECK(read_all(dst) == read_all(src));
  struct stat st = stat_of(dst);
  CHECK(st.st_size == (64 << 20));
  CHECK((st.st_mode & 0777) == 0600);
  if (r.method == CloneMethod::sparse_copy) {
    CHECK(r.bytes_written == 4096 + 8192);  // the zero MiB was not written
    CHECK(st.st_blocks * 512 <= 64 * 1024);  // 12 KiB of data, not 64 MiB (nor the zero MiB)
  } else {
    CHECK(r.bytes_written == 0);
  }
  bool expect_reflink = fs_can_reflink(dir);
  CHECK(r.method == (expect_reflink ? CloneMethod::reflink : CloneMethod::sparse_copy));
}

}  // namespace

TEST_CASE("disk clone falls back to a sparse copy on ext4 and tmpfs", "[firecracker][disk]") {
  SECTION("the test temp dir") {
    test::TempDir tmp;
    long type = fs_type(tmp.path());
    if (type == EXT4_SUPER_MAGIC || type == TMPFS_MAGIC) CHECK_FALSE(fs_can_reflink(tmp.path()));
    check_sparse_clone(tmp.path());
  }
  SECTION("tmpfs") {
    ShmDir shm;
    REQUIRE(fs_type(shm.path) == TMPFS_MAGIC);
    CHECK_FALSE(fs_can_reflink(shm.path));
    check_sparse_clone(shm.path);
  }
}

TEST_CASE("disk clone reflinks on a filesystem that can (XFS on a loop device)", "[firecracker][disk]") {
  BANGER_NEEDS_ROOT("mounts a filesystem");
  test::TempDir tmp;
  std::string image = tmp / "xfs.img", mnt = tmp / "mnt";
  {
    std::ofstream(image).close();
    REQUIRE(::truncate(image.c_str(), 512LL << 20) == 0);
  }
  auto mkfs = process::run({{"mkfs.xfs", "-q", "-m", "reflink=1", image}, {}, {}, {}, false, {}, {}, {}});
  INFO(mkfs.err);
  REQUIRE(mkfs.status.code == 0);  // xfsprogs: scripts/deps.sh --test installs it
  ::mkdir(mnt.c_str(), 0700);
  auto mount = process::run({{"mount", "-o", "loop", image, mnt}, {}, {}, {}, false, {}, {}, {}});
  INFO(mount.err);
  REQUIRE(mount.status.code == 0);
  struct Unmount {
    std::string dir;
    ~Unmount() { process::run({{"umount", dir}, {}, {}, {}, false, {}, {}, {}}); }
  } unmount{mnt};

  REQUIRE(fs_type(mnt) == XFS_SUPER_MAGIC);
  std::string src = mnt + "/image.ext4", dst = mnt + "/vm-root.ext4";
  {
    std::mt19937 rng(7);
    std::string data(8 << 20, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    std::ofstream(src, std::ios::binary) << data;
  }
  CloneResult r = clone_disk(src, dst);
  CHECK(r.method == CloneMethod::reflink);
  CHECK(r.bytes_written == 0);
  CHECK(read_all(dst) == read_all(src));
  // Copy-on-write: the guest writing its disk leaves the image alone.
  std::string before = read_all(src);
  {
    int fd = ::open(dst.c_str(), O_WRONLY);
    REQUIRE(::pwrite(fd, "guest", 5, 4096) == 5);
    ::close(fd);
  }
  CHECK(read_all(src) == before);
  CHECK(read_all(dst).substr(4096, 5) == "guest");
}

TEST_CASE("disk clone of small and empty files", "[firecracker][disk]") {
  test::TempDir tmp;
  std::ofstream(tmp / "empty").close();
  CHECK(clone_disk(tmp / "empty", tmp / "empty.copy").size == 0);
  CHECK(stat_of(tmp / "empty.copy").st_size == 0);
  std::string odd(4097 + 13, 'x');
  odd[4100] = '\0';
  std::ofstream(tmp / "odd", std::ios::binary) << odd;
  clone_disk(tmp / "odd", tmp / "odd.copy");
  CHECK(read_all(tmp / "odd.copy") == odd);
}

TEST_CASE("a disk clone asked for more than the image is that large, the rest a hole", "[firecracker][disk]") {
  test::TempDir tmp;
  std::string src = tmp / "image.ext4", dst = tmp / "vm-root.ext4";
  make_sparse_image(src);
  CloneResult r = clone_disk(src, dst, 1ULL << 30);  // the VM's disk size
  CHECK(r.size == (1ULL << 30));
  struct stat st = stat_of(dst);
  CHECK(st.st_size == (1LL << 30));
  CHECK(st.st_blocks <= stat_of(src).st_blocks);  // the growth allocates nothing
  std::string head(64 << 20, '\0');
  std::ifstream(dst, std::ios::binary).read(head.data(), static_cast<std::streamsize>(head.size()));
  CHECK(head == read_all(src));
  // Never smaller than the image: that would cut its filesystem off.
  CHECK(clone_disk(src, tmp / "small", 1 << 20).size == (64u << 20));
  CHECK(stat_of(tmp / "small").st_size == (64 << 20));
}

TEST_CASE("disk clone follows no symlinks and replaces nothing", "[firecracker][disk][security]") {
  test::TempDir tmp;
  std::ofstream(tmp / "image") << "image";
  std::ofstream(tmp / "victim") << "victim";
  auto code_of = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.code();
    }
    return std::string("(none)");
  };
  REQUIRE(::symlink((tmp / "image").c_str(), (tmp / "link-src").c_str()) == 0);
  CHECK(code_of([&] { clone_disk(tmp / "link-src", tmp / "out1"); }) == "ELOOP");
  REQUIRE(::symlink((tmp / "victim").c_str(), (tmp / "link-dst").c_str()) == 0);
  CHECK(code_of([&] { clone_disk(tmp / "image", tmp / "link-dst"); }) == "EEXIST");
  CHECK(code_of([&] { clone_disk(tmp / "image", tmp / "victim"); }) == "EEXIST");
  CHECK(read_all(tmp / "victim") == "victim");
  ::mkdir((tmp / "dir").c_str(), 0700);
  CHECK(code_of([&] { clone_disk(tmp / "dir", tmp / "out2"); }) == "EINVAL");
  // No temporary file is left behind by any of these.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 5);  // image, victim, link-src, link-dst, dir
}

TEST_CASE("an interrupted disk clone leaves nothing behind", "[firecracker][disk]") {
  test::TempDir tmp;
  make_sparse_image(tmp / "image");
  test::CancelReset reset;
  cancel::request();
  try {
    clone_disk(tmp / "image", tmp / "copy");
    cancel::reset();
    // A reflink needs no loop to interrupt; only the copy path can be stopped.
    CHECK(fs_can_reflink(tmp.path()));
  } catch (const Error& e) {
    cancel::reset();
    CHECK(e.code() == "ECANCELED");
    CHECK(::access((tmp / "copy").c_str(), F_OK) != 0);
    size_t entries = 0;
    for (const auto& e2 : std::filesystem::directory_iterator(tmp.path())) {
      (void)e2;
      ++entries;
    }
    CHECK(entries == 1);
  }
}
