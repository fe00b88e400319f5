// The ext4 engine against real images, checked by e2fsprogs' own tools.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/ext4/filesystem.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

process::RunResult tool(std::vector<std::string> argv) {
  return process::run(process::SpawnOptions{std::move(argv), {}, {}, {}, false, {}, {}, {}});
}

void require_clean(const std::string& img) {
  auto r = tool({"e2fsck", "-fn", img});
  INFO(r.out << r.err);
  REQUIRE(r.status.shell_code() == 0);
}

std::string debugfs(const std::string& img, const std::string& cmd) { return tool({"debugfs", "-R", cmd, img}).out; }


}  // namespace

TEST_CASE("files, directories and symlinks with exact ownership", "[ext4]") {
  test::TempDir t;
  std::string img = t / "disk.ext4";
  ext4::mkfs(img, 64 << 20);
  {
    auto fs = ext4::Filesystem::open(img, true);
    fs->mkdir("/root/.ssh", {0, 0, 0700, ext4::Owner::now}, true);
    fs->write("/root/.ssh/authorized_keys", "ssh-ed25519 AAAA banger\n", {0, 0, 0600, 1700000000});
    CHECK(test::error_code_of([&] { fs->write("/home/u/file", "x", {}); }) == "ENOENT");
    fs->mkdir("/home/u", {1000, 1001, 0750, ext4::Owner::now}, true);
    fs->write("/home/u/big", std::string(3 << 20, 'b'), {1000, 1001, 04755, ext4::Owner::now});
    fs->mkdir("/tmp", {0, 0, 01777, ext4::Owner::now}, false);
    fs->write("/tmp/high-ids", "", {70000, 70001, 0640, ext4::Owner::now});  // ids above 16 bits
    fs->symlink("/root/.ssh/authorized_keys", "/keys", {0, 0, 0777, ext4::Owner::now});
    fs->symlink(std::string(200, 'l'), "/longlink", {});  // not a fast symlink
    fs->close();
  }
  require_clean(img);
  CHECK(debugfs(img, "cat /root/.ssh/authorized_keys") == "ssh-ed25519 AAAA banger\n");
  std::string st = debugfs(img, "stat /home/u/big");
  CHECK(st.find("Mode:  04755") != std::string::npos);
  CHECK(st.find("User:  1000   Group:  1001") != std::string::npos);
  CHECK(st.find("Size: 3145728") != std::string::npos);

  auto fs = ext4::Filesystem::open(img, false);
  auto keys = fs->stat("/keys");
  REQUIRE(keys);
  CHECK(keys->type == "symlink");
  CHECK(keys->target == "/root/.ssh/authorized_keys");
  CHECK(fs->stat("/longlink")->target == std::string(200, 'l'));
  auto ak = fs->stat("/root/.ssh/authorized_keys");
  CHECK(ak->mode == 0600);
  CHECK(ak->mtime == 1700000000);
  CHECK(fs->stat("/root/.ssh")->mode == 0700);
  CHECK(fs->list("/home/u") == std::vector<std::string>{"big"});
  CHECK(fs->stat("/tmp/high-ids")->uid == 70000);
  CHECK(fs->stat("/tmp/high-ids")->gid == 70001);
  CHECK(fs->stat("/tmp")->mode == 01777);
  CHECK(fs->read("/home/u/big") == std::string(3 << 20, 'b'));
  CHECK_FALSE(fs->exists("/nope"));
}

TEST_CASE("create: a new filesystem written through without reopening, one flush at close", "[ext4]") {
  test::TempDir t;
  std::string img = t / "work.ext4";
  {
    auto fs = ext4::Filesystem::create(img, 4ULL << 30);  // a VM's default work disk
    fs->mkdir("/.ssh", {0, 0, 0700, ext4::Owner::now}, true);
    fs->write("/.ssh/authorized_keys", "ssh-ed25519 AAAA banger\n", {0, 0, 0600, ext4::Owner::now});
    fs->mkdir("/repo", {0, 0, 0755, ext4::Owner::now}, false);
    fs->write("/repo/big", std::string(5 << 20, 'w'), {0, 0, 0644, ext4::Owner::now});
    CHECK(test::error_code_of([&] { fs->write("/repo/sub/x", "x", {}); }) == "ENOENT");
    fs->mkdir("/repo/sub", {1000, 1000, 0755, ext4::Owner::now}, false);
    fs->write("/repo/sub/x", "x", {1000, 1000, 0600, ext4::Owner::now});
    CHECK(fs->has_journal());
    fs->close();
  }
  require_clean(img);
  CHECK(debugfs(img, "cat /.ssh/authorized_keys") == "ssh-ed25519 AAAA banger\n");
  auto fs = ext4::Filesystem::open(img, false);
  CHECK(fs->size_bytes() == (4ULL << 30));
  CHECK(fs->read("/repo/big") == std::string(5 << 20, 'w'));
  CHECK(fs->stat("/repo/sub/x")->uid == 1000);
  CHECK(fs->list("/") == std::vector<std::string>{".ssh", "lost+found", "repo"});
}

TEST_CASE("replacing a file switches to a complete new inode", "[ext4]") {
  test::TempDir t;
  std::string img = t / "disk.ext4";
  ext4::mkfs(img, 32 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  fs->write("/etc-hosts", "old", {});
  auto before = fs->stat("/etc-hosts")->ino;
  fs->write("/etc-hosts", "new", {});
  CHECK(fs->stat("/etc-hosts")->ino != before);  // the new inode exists before the old one goes
  for (int i = 0; i < 50; ++i) fs->write("/etc-hosts", std::string(100000, static_cast<char>('a' + i % 26)), {});
  auto after = fs->stat("/etc-hosts");
  CHECK(after->size == 100000);
  CHECK(after->nlink == 1);
  fs->close();
  require_clean(img);  // the old inodes and blocks were freed, not leaked
}

TEST_CASE("chown, chmod and recursive removal", "[ext4]") {
  test::TempDir t;
  std::string img = t / "disk.ext4";
  ext4::mkfs(img, 32 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  fs->mkdir("/a/b/c", {}, true);
  for (int i = 0; i < 300; ++i) fs->write("/a/b/c/f" + std::to_string(i), "data", {});  // grows the directory
  fs->symlink("f1", "/a/b/l", {});
  fs->chown("/a/b", 5, 6);
  fs->chmod("/a/b", 0711);
  CHECK(fs->stat("/a/b")->uid == 5);
  CHECK(fs->stat("/a/b")->mode == 0711);
  CHECK(test::error_code_of([&] { fs->remove("/a", false); }) == "ENOTEMPTY");
  fs->remove("/a", true);
  CHECK_FALSE(fs->exists("/a"));
  fs->close();
  require_clean(img);
}

TEST_CASE("a symlink in the image never redirects a write", "[ext4][attack]") {
  test::TempDir t;
  std::string img = t / "disk.ext4";
  ext4::mkfs(img, 32 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  fs->mkdir("/etc", {}, false);
  fs->write("/etc/passwd", "root:x:0:0\n", {});
  // A hostile image points /root at /etc: provisioning /root/.ssh must not land in /etc.
  fs->symlink("/etc", "/root", {});
  CHECK(test::error_code_of([&] { fs->mkdir("/root/.ssh", {}, true); }) == "EUNSAFE");
  CHECK(test::error_code_of([&] { fs->write("/root/passwd", "owned", {}); }) == "EUNSAFE");
  CHECK(test::error_code_of([&] { fs->read("/root/passwd"); }) == "EUNSAFE");
  CHECK(test::error_code_of([&] { fs->write("/etc/../etc/passwd", "owned", {}); }) == "EUNSAFE");
  CHECK(test::error_code_of([&] { fs->write("relative", "x", {}); }) == "EINVAL");
  CHECK(fs->read("/etc/passwd") == "root:x:0:0\n");
  fs->close();
  require_clean(img);
}

TEST_CASE("a user without privileges builds images with root-owned files", "[ext4]") {
  BANGER_NEEDS_ROOT("switches to another uid");
  test::TempDir t;
  REQUIRE(::chmod(t.path().c_str(), 0777) == 0);
  std::string img = t / "user.ext4";
  int rc = test::in_child([&] {
    if (::setresgid(test::kNobody, test::kNobody, test::kNobody) || ::setresuid(test::kNobody, test::kNobody, test::kNobody))
      return 97;
    ext4::mkfs(img, 16 << 20);
    auto fs = ext4::Filesystem::open(img, true);
    fs->mkdir("/root", {0, 0, 0700, ext4::Owner::now}, true);
    fs->write("/root/secret", "s", {0, 0, 0600, ext4::Owner::now});
    fs->close();
    return 0;
  });
  REQUIRE(rc == 0);
  struct stat st {};
  REQUIRE(::stat(img.c_str(), &st) == 0);
  CHECK(st.st_uid == test::kNobody);  // the image file belongs to the user...
  CHECK(debugfs(img, "stat /root/secret").find("User:     0   Group:     0") != std::string::npos);  // ...its files to root
  require_clean(img);
}

namespace {
// dumpe2fs without what differs between any two filesystems made alike:
// random UUID and hash seed, times, bytes written (mkfs.ext4 wipes its
// journal; a fresh sparse file needs no wipe) and the checksums.
std::string layout(const std::string& img) {
  auto r = tool({"dumpe2fs", img});
  REQUIRE(r.status.shell_code() == 0);
  std::string out, line;
  std::istringstream in(r.out);
  while (std::getline(in, line)) {
    if (line.find("UUID") != std::string::npos || line.find("Hash Seed") != std::string::npos ||
        line.find("time:") != std::string::npos || line.find("created:") != std::string::npos ||
        line.find("Last checked:") != std::string::npos || line.find("hecksum") != std::string::npos ||
        line.find("Lifetime writes:") != std::string::npos)
      continue;
    for (size_t at; (at = line.find("csum 0x")) != std::string::npos;) line.erase(at, line.find_first_of(" ,\n", at + 5) - at);
    out += line + "\n";
  }
  return out;
}
}  // namespace

TEST_CASE("mkfs makes, in-process, what mkfs.ext4 makes", "[ext4]") {
  // Below and above mke2fs's "small" size class (512 MiB), with and without
  // a journal, with a label.
  for (auto [mib, journal] : {std::pair{64u, true}, std::pair{700u, true}, std::pair{200u, false}}) {
    DYNAMIC_SECTION(mib << " MiB, journal " << journal) {
      test::TempDir t;
      std::string ours = t / "ours.ext4", theirs = t / "theirs.ext4";
      const std::uint64_t size = std::uint64_t{mib} << 20;
      ext4::mkfs(ours, size, "lbl", journal);
      {
        int fd = ::open(theirs.c_str(), O_WRONLY | O_CREAT, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
        ::close(fd);
      }
      std::vector<std::string> argv = {"mkfs.ext4", "-F", "-q", "-b", "4096", "-E", "root_owner=0:0,lazy_itable_init=1",
                                       "-m", "0", "-L", "lbl"};
      if (!journal) argv.insert(argv.end(), {"-O", "^has_journal"});
      argv.push_back(theirs);
      auto mk = tool(argv);
      INFO(mk.err);
      REQUIRE(mk.status.shell_code() == 0);
      require_clean(ours);
      CHECK(layout(ours) == layout(theirs));
      // The root and lost+found as mke2fs leaves them (mode, owner, size, links).
      for (const char* dir : {"/", "/lost+found"}) {
        auto a = ext4::Filesystem::open(ours, false)->stat(dir);
        auto b = ext4::Filesystem::open(theirs, false)->stat(dir);
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->mode == b->mode);
        CHECK(a->uid == b->uid);
        CHECK(a->gid == b->gid);
        CHECK(a->size == b->size);
        CHECK(a->nlink == b->nlink);
        CHECK(a->ino == b->ino);
      }
      // Sparse: nothing but metadata was written (mkfs.ext4 wipes the journal).
      struct stat st {};
      REQUIRE(::stat(ours.c_str(), &st) == 0);
      CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 < size / 64);
    }
  }
}
