// `banger-agent --grow-fs`, which banger's initramfs runs on the root and
// work disks at every boot: what it checks before growing, on real ext4
// images on loop devices. The growth itself (EXT4_IOC_RESIZE_FS) needs
// CAP_SYS_RESOURCE, which the containers this suite runs in do not grant,
// and the kernel that matters is the guest's: it is tested in a VM, on
// Debian's 6.1 kernel, by tests/lua/e2e_growfs_spec.lua.
// Also ext4::grow, the host-side growth of a stopped VM's work disk
// (`vm set --work-disk`), on a filesystem a mount has used.
#include <catch2/catch.hpp>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/core/process.hpp"
#include "engine/ext4/filesystem.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

const std::string kAgent = std::string(BANGER_TEST_BINARY_DIR) + "/cli/banger-agent/banger-agent";
constexpr std::uint64_t MiB = 1ULL << 20, GiB = 1ULL << 30;

process::RunResult run(std::vector<std::string> argv) {
  process::SpawnOptions o;
  o.argv = std::move(argv);
  return process::run(o, {}, std::chrono::minutes(2));
}

// A loop device over an image file, mounted at `dir`; both undone on scope exit.
class Mounted {
 public:
  Mounted(const std::string& image, const std::string& dir) : dir_(dir) {
    auto r = run({"losetup", "--find", "--show", image});
    REQUIRE(r.status.code == 0);
    device_ = r.out.substr(0, r.out.find('\n'));
    ::mkdir(dir.c_str(), 0755);
    if (::mount(device_.c_str(), dir.c_str(), "ext4", 0, nullptr) != 0) {
      std::string why = std::strerror(errno);
      run({"losetup", "-d", device_});
      FAIL("mount " << device_ << ": " << why);
    }
  }
  ~Mounted() { unmount(); }
  Mounted(const Mounted&) = delete;
  Mounted& operator=(const Mounted&) = delete;
  const std::string& device() const { return device_; }
  std::uint64_t df_bytes() const {
    struct statvfs s {};
    REQUIRE(::statvfs(dir_.c_str(), &s) == 0);
    return static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize;
  }
  void unmount() {
    if (device_.empty()) return;
    ::umount(dir_.c_str());
    run({"losetup", "-d", device_});
    device_.clear();
  }

 private:
  std::string dir_, device_;
};

void require_clean(const std::string& image) {
  auto r = run({"e2fsck", "-fn", image});
  INFO(r.out << r.err);
  REQUIRE(r.status.code == 0);
}

}  // namespace

TEST_CASE("images fitted the way banger builds them keep room in the descriptor table to grow", "[growfs]") {
  test::TempDir t;
  const std::string img = t / "root.ext4";
  // What images.import_layers does: a generous start without a journal,
  // fitted to the content, then the journal.
  ext4::mkfs(img, 1 * GiB, "", false);
  {
    auto fs = ext4::Filesystem::open(img, true);
    fs->write("/etc-hostname", "box\n", {});
    fs->resize(300 * MiB);
    fs->add_journal();
    fs->close();
  }
  // mke2fs reserves descriptor blocks for 1024 times the size it was made
  // at, and fitting keeps them: growing online to 1 TiB never has to
  // convert the layout (the kernel can, to meta_bg, but it is slower).
  auto dump = run({"dumpe2fs", "-h", img});
  REQUIRE(dump.status.code == 0);
  for (const char* feature : {"resize_inode", "flex_bg", "64bit", "metadata_csum", "has_journal"})
    CHECK(dump.out.find(feature) != std::string::npos);
  auto at = dump.out.find("Reserved GDT blocks:");
  REQUIRE(at != std::string::npos);
  // 64-byte descriptors, 64 per 4 KiB block, one per 128 MiB group; plus
  // the one block the 300 MiB filesystem uses.
  CHECK((std::stoull(dump.out.substr(at + 20)) + 1) * 64 * 128 * MiB >= 1024 * GiB);
}

TEST_CASE("agent --grow-fs leaves a filesystem that already fills its disk alone", "[growfs]") {
  test::TempDir t;
  const std::string img = t / "work.ext4";
  ext4::mkfs(img, 256 * MiB);
  {
    Mounted m(img, t / "mnt");
    const std::uint64_t before = m.df_bytes();
    auto r = run({kAgent, "--grow-fs", m.device(), t / "mnt"});
    INFO(r.out << r.err);
    CHECK(r.status.code == 0);
    CHECK(r.out == m.device() + ": the filesystem (256 MiB) already fills the disk\n");
    CHECK(m.df_bytes() == before);
  }
  require_clean(img);
}

TEST_CASE("agent --grow-fs refuses a device that is not the filesystem at that mount point", "[growfs]") {
  test::TempDir t;
  const std::string a = t / "a.ext4", b = t / "b.ext4";
  ext4::mkfs(a, 64 * MiB);
  ext4::mkfs(b, 64 * MiB);
  Mounted ma(a, t / "ma");
  Mounted mb(b, t / "mb");
  const std::uint64_t before = ma.df_bytes();
  auto wrong = run({kAgent, "--grow-fs", mb.device(), t / "ma"});
  CHECK(wrong.status.code == 1);
  CHECK(wrong.err.find(mb.device() + " is not the filesystem mounted at " + t / "ma") != std::string::npos);
  auto file = run({kAgent, "--grow-fs", a, t / "ma"});
  CHECK(file.status.code == 1);
  CHECK(file.err.find("is not a block device") != std::string::npos);
  CHECK(ma.df_bytes() == before);
  CHECK(run({kAgent, "--grow-fs", mb.device()}).status.code == 2);  // usage
}

TEST_CASE("ext4::grow grows a used filesystem and its file, never shrinks, and finishes a grow cut short", "[growfs]") {
  test::TempDir t;
  const std::string img = t / "work.ext4";
  ext4::mkfs(img, 64 * MiB);
  {
    // mounted once, as a guest does: resize2fs then wants a fresh e2fsck
    Mounted m(img, t / "mnt");
    std::ofstream(t / "mnt/note") << "kept\n";
  }
  CHECK(ext4::grow(img, 128 * MiB) == 128 * MiB);
  CHECK(std::filesystem::file_size(img) == 128 * MiB);
  require_clean(img);
  CHECK(ext4::Filesystem::open(img, false)->read("/note") == "kept\n");

  // shrinking is refused and changes nothing
  try {
    ext4::grow(img, 96 * MiB);
    FAIL("grow to a smaller size returned");
  } catch (const Error& e) {
    CHECK(e.code() == "EINVAL");
    CHECK(std::string(e.what()).find("from 134217728 to 100663296 bytes") != std::string::npos);
  }
  CHECK(ext4::Filesystem::open(img, false)->size_bytes() == 128 * MiB);
  CHECK(ext4::grow(img, 128 * MiB) == 128 * MiB);  // the same size: nothing to do

  // killed after extending the file: the next grow to that size finishes
  std::filesystem::resize_file(img, 192 * MiB);
  CHECK_THROWS_AS(ext4::grow(img, 160 * MiB), Error);  // below the file
  CHECK(ext4::grow(img, 192 * MiB) == 192 * MiB);
  require_clean(img);
  CHECK(ext4::Filesystem::open(img, false)->read("/note") == "kept\n");
}
