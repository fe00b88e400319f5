// Tar layers into ext4 images with OCI semantics; results checked with
// e2fsck and debugfs, and hostile archives refused.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/core/byte_source.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/ext4/filesystem.hpp"
#include "engine/ext4/populate.hpp"
#include "test_util.hpp"

using namespace banger;

// Test tables below list only the fields that matter for each entry.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace {

struct Entry {
  std::string path;
  char type = 'f';  // f file, d dir, l symlink, h hardlink, c char, p fifo
  std::string data;  // file content, or link target
  unsigned uid = 0, gid = 0, mode = 0644;
  unsigned major = 0, minor = 0;
  std::string xattr_name, xattr_value;
};

// A layer tar written with libarchive into memory; filter: "none", "gzip", "zstd".
std::vector<std::byte> make_tar(const std::vector<Entry>& entries, const std::string& filter = "gzip") {
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  if (filter == "gzip") archive_write_add_filter_gzip(a.get());
  if (filter == "zstd") archive_write_add_filter_zstd(a.get());
  std::vector<char> buf(64 << 20);
  size_t used = 0;
  REQUIRE(archive_write_open_memory(a.get(), buf.data(), buf.size(), &used) == ARCHIVE_OK);
  for (const Entry& en : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.path.c_str());
    archive_entry_set_uid(e, en.uid);
    archive_entry_set_gid(e, en.gid);
    archive_entry_set_perm(e, en.mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    switch (en.type) {
      case 'f': archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_size(e, static_cast<la_int64_t>(en.data.size())); break;
      case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
      case 'l': archive_entry_set_filetype(e, AE_IFLNK); archive_entry_set_symlink(e, en.data.c_str()); break;
      case 'h': archive_entry_set_filetype(e, AE_IFREG); archive_entry_set_hardlink(e, en.data.c_str()); break;
      case 'c': archive_entry_set_filetype(e, AE_IFCHR); archive_entry_set_rdev(e, makedev(en.major, en.minor)); break;
      case 'p': archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    if (!en.xattr_name.empty())
      archive_entry_xattr_add_entry(e, en.xattr_name.c_str(), en.xattr_value.data(), en.xattr_value.size());
    REQUIRE(archive_write_header(a.get(), e) == ARCHIVE_OK);
    if (en.type == 'f' && !en.data.empty()) archive_write_data(a.get(), en.data.data(), en.data.size());
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
  auto* p = reinterpret_cast<const std::byte*>(buf.data());
  return std::vector<std::byte>(p, p + used);
}

ext4::LayerStats apply(ext4::Filesystem& fs, std::vector<std::byte> tar, const std::string& name) {
  auto src = memory_source(std::move(tar), name);
  return ext4::apply_layer(fs, *src);
}

std::string run(std::vector<std::string> argv) {
  return process::run(process::SpawnOptions{std::move(argv), {}, {}, {}, false, {}, {}, {}}).out;
}

void require_clean(const std::string& img) {
  auto r = process::run(process::SpawnOptions{{"e2fsck", "-fn", img}, {}, {}, {}, false, {}, {}, {}});
  INFO(r.out << r.err);
  REQUIRE(r.status.shell_code() == 0);
}

std::string rejection(ext4::Filesystem& fs, std::vector<std::byte> tar) {
  try {
    apply(fs, std::move(tar), "layer-evil");
  } catch (const Error& e) {
    CHECK(e.code() == "EUNSAFE");
    return e.what();
  }
  FAIL("the layer was accepted");
  return "";
}

}  // namespace

TEST_CASE("a layer keeps owners, modes, links, devices and xattrs", "[ext4][populate]") {
  test::TempDir t;
  std::string img = t / "root.ext4";
  ext4::mkfs(img, 64 << 20);
  {
    auto fs = ext4::Filesystem::open(img, true);
    std::string cap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
    auto st = apply(*fs, make_tar({
        {"./usr", 'd', "", 0, 0, 0755},
        {"./usr/bin", 'd', "", 0, 0, 0755},
        {"./usr/bin/tool", 'f', "#!/bin/sh\necho tool\n", 0, 0, 04755},
        {"./usr/bin/ping", 'f', "ping-binary", 0, 0, 0755, 0, 0, "security.capability", cap},
        {"./bin", 'l', "usr/bin"},
        {"./home", 'd', "", 0, 0, 0755},
        {"./home/alice", 'd', "", 1000, 1000, 0700},
        {"./home/alice/notes", 'f', "hi", 1000, 1000, 0600},
        {"./var/tmp", 'd', "", 0, 0, 01777},  // parent ./var missing from the archive
        {"./nobody-file", 'f', "n", 65534, 65534, 0640},
        {"./usr/bin/tool-again", 'h', "usr/bin/tool"},
        {"./dev", 'd'},
        {"./dev/null", 'c', "", 0, 0, 0666, 1, 3},
        {"./run-fifo", 'p', "", 0, 0, 0600},
    }), "layer-1");
    CHECK(st.entries == 14);
    // bin -> usr/bin is followed inside the image for later entries.
    apply(*fs, make_tar({{"bin/extra", 'f', "x"}}), "layer-2");
    CHECK(fs->stat("/usr/bin/extra").has_value());
    CHECK(fs->stat("/bin")->type == "symlink");
    CHECK(fs->get_xattr("/usr/bin/ping", "security.capability") == cap);
    CHECK(fs->stat("/usr/bin/tool")->nlink == 2);
    CHECK(fs->stat("/var")->mode == 0755);
    fs->close();
  }
  require_clean(img);
  auto dbg = [&](const std::string& cmd) { return run({"debugfs", "-R", cmd, img}); };
  CHECK(dbg("stat /usr/bin/tool").find("Mode:  04755") != std::string::npos);
  CHECK(dbg("stat /home/alice/notes").find("User:  1000   Group:  1000") != std::string::npos);
  CHECK(dbg("stat /nobody-file").find("User: 65534   Group: 65534") != std::string::npos);
  CHECK(dbg("stat /var/tmp").find("Mode:  01777") != std::string::npos);
  CHECK(dbg("stat /dev/null").find("Type: character special") != std::string::npos);
  CHECK(dbg("stat /dev/null").find("Device major/minor number: 01:03") != std::string::npos);
  CHECK(dbg("stat /run-fifo").find("Type: FIFO") != std::string::npos);
  CHECK(dbg("stat /bin").find("Fast link dest: \"usr/bin\"") != std::string::npos);
  CHECK(dbg("cat /home/alice/notes") == "hi");
  CHECK(dbg("ea_list /usr/bin/ping").find("security.capability") != std::string::npos);
}

TEST_CASE("whiteouts and opaque directories hide lower layers", "[ext4][populate]") {
  test::TempDir t;
  std::string img = t / "root.ext4";
  ext4::mkfs(img, 32 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  apply(*fs, make_tar({
      {"etc", 'd'}, {"etc/keep", 'f', "k"}, {"etc/drop", 'f', "d"},
      {"opt", 'd'}, {"opt/old1", 'f', "1"}, {"opt/sub", 'd'}, {"opt/sub/old2", 'f', "2"},
      {"data", 'd'}, {"data/file", 'f', "x"},
  }, "none"), "lower");
  auto st = apply(*fs, make_tar({
      {"etc/.wh.drop", 'f'},
      {"opt/new-before", 'f', "b"},
      {"opt/.wh..wh..opq", 'f'},
      {"opt/new-after", 'f', "a"},
      {"data", 'f', "now a file"},  // a file replaces a directory
      {"etc/keep", 'f', "replaced"},
  }, "zstd"), "upper");
  CHECK(st.whiteouts == 2);
  CHECK(fs->exists("/etc/keep"));
  CHECK(fs->read("/etc/keep") == "replaced");
  CHECK_FALSE(fs->exists("/etc/drop"));
  CHECK(fs->list("/opt") == std::vector<std::string>{"new-after", "new-before"});
  CHECK(fs->stat("/data")->type == "file");
  CHECK_FALSE(fs->exists("/etc/.wh.drop"));
  fs->close();
  require_clean(img);
}

TEST_CASE("hostile layers are refused, naming the layer and the entry", "[ext4][populate][attack]") {
  test::TempDir t;
  std::string img = t / "root.ext4";
  ext4::mkfs(img, 32 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  fs->mkdir("/etc", {}, false);
  fs->write("/etc/passwd", "root:x:0:0\n", {});

  std::string why = rejection(*fs, make_tar({{"../etc/passwd", 'f', "owned"}}));
  CHECK(why.find("layer layer-evil") != std::string::npos);
  CHECK(why.find("entry ../etc/passwd") != std::string::npos);
  CHECK(rejection(*fs, make_tar({{"/etc/passwd", 'f', "owned"}})).find("absolute path") != std::string::npos);
  CHECK(rejection(*fs, make_tar({{"a/../../x", 'f', "x"}})).find("'..'") != std::string::npos);
  // A symlink climbing out of the root, then a write through it.
  CHECK(rejection(*fs, make_tar({{"evil", 'l', "../../../../etc"}, {"evil/passwd", 'f', "owned"}}))
            .find("escapes the image root") != std::string::npos);
  CHECK(rejection(*fs, make_tar({{"deep/er/link", 'l', "../../../outside"}})).find("escapes") != std::string::npos);
  // Hardlinks to outside the tree, or to nothing.
  CHECK(rejection(*fs, make_tar({{"h", 'h', "../../etc/shadow"}})).find("'..'") != std::string::npos);
  CHECK(rejection(*fs, make_tar({{"h", 'h', "not/there"}})).find("not in the image") != std::string::npos);
  CHECK(rejection(*fs, make_tar({{std::string(300, 'n'), 'f', "x"}})).find("255 bytes") != std::string::npos);
  // A huge declared size: patch a plain tar's header to claim 64 GiB.
  auto tar = make_tar({{"big", 'f', "tiny"}}, "none");
  std::string huge = "777777777777";  // octal, near 64 GiB; the checksum is fixed below
  // ustar header at 0 (pax_restricted writes no extended header for this entry)
  std::memcpy(reinterpret_cast<char*>(tar.data()) + 124, huge.data(), 11);
  unsigned sum = 0;
  std::memset(reinterpret_cast<char*>(tar.data()) + 148, ' ', 8);
  for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(tar[static_cast<size_t>(i)]);
  std::snprintf(reinterpret_cast<char*>(tar.data()) + 148, 8, "%06o", sum);
  CHECK(rejection(*fs, tar).find("larger than the space left") != std::string::npos);

  // Symlinks that stay inside the root (absolute ones included) are fine.
  CHECK_NOTHROW(apply(*fs, make_tar({{"ok", 'l', "/etc/passwd"}, {"sub/ok2", 'l', "../etc"}}), "fine"));
  CHECK(fs->read("/etc/passwd") == "root:x:0:0\n");
  fs->close();
  require_clean(img);
}

TEST_CASE("an unprivileged user builds a root-owned tree from a layer", "[ext4][populate]") {
  BANGER_NEEDS_ROOT("switches to another uid");
  test::TempDir t;
  REQUIRE(::chmod(t.path().c_str(), 0777) == 0);
  std::string img = t / "user.ext4";
  auto tar = make_tar({{"root", 'd', "", 0, 0, 0700}, {"root/.profile", 'f', "p", 0, 0, 0644},
                       {"dev", 'd'}, {"dev/console", 'c', "", 0, 0, 0600, 5, 1}});
  int rc = test::in_child([&] {
    if (::setresgid(test::kNobody, test::kNobody, test::kNobody) || ::setresuid(test::kNobody, test::kNobody, test::kNobody))
      return 97;
    ext4::mkfs(img, 16 << 20);
    auto fs = ext4::Filesystem::open(img, true);
    apply(*fs, tar, "layer");
    fs->close();
    return 0;
  });
  REQUIRE(rc == 0);
  auto st = run({"debugfs", "-R", "stat /root/.profile", img});
  CHECK(st.find("User:     0   Group:     0") != std::string::npos);
  CHECK(run({"debugfs", "-R", "stat /dev/console", img}).find("Device major/minor number: 05:01") != std::string::npos);
  require_clean(img);
}

namespace {

// Serves `data`, then fails the way a blob whose digest does not match
// fails at its end.
class LyingAtTheEnd final : public ByteSource {
 public:
  explicit LyingAtTheEnd(std::vector<std::byte> data) : data_(std::move(data)) {}
  std::span<const std::byte> read() override {
    if (!served_) {
      served_ = true;
      return {data_.data(), data_.size()};
    }
    throw Error("EDIGEST", "blob sha256:feed: content hashes to something else");
  }
  std::string describe() const override { return "blob sha256:feed"; }

 private:
  std::vector<std::byte> data_;
  bool served_ = false;
};

}  // namespace

TEST_CASE("a layer is read to its end: a digest failure there fails the layer with its own code", "[ext4][populate]") {
  test::TempDir t;
  std::string img = t / "root.ext4";
  ext4::mkfs(img, 16 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  for (std::string filter : {"gzip", "none"}) {
    LyingAtTheEnd src(make_tar({{"etc", 'd'}, {"etc/f", 'f', "data"}}, filter));
    std::string code = test::error_code_of([&] { ext4::apply_layer(*fs, src); });
    CHECK(code == "EDIGEST");
  }
}

TEST_CASE("a growable image grows for big files and many inodes, then fits its content", "[ext4][populate]") {
  test::TempDir t;
  std::string img = t / "grow.ext4";
  ext4::mkfs(img, 16 << 20, {}, false);
  std::string big(40 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i >> 12);
  std::vector<Entry> many = {{"many", 'd'}};
  for (int i = 0; i < 6000; ++i) many.push_back({"many/f" + std::to_string(i), 'f', std::to_string(i)});
  std::uint64_t content = 0;
  {
    auto fs = ext4::Filesystem::open(img, true);
    std::uint64_t inodes = fs->free_inodes();
    REQUIRE(inodes < 6000);  // so the second layer must grow the inode tables too
    fs->set_growth_limit(1ull << 30);
    content += apply(*fs, make_tar({{"big", 'f', big}}, "none"), "big").content;
    CHECK(fs->size_bytes() > (40u << 20));
    content += apply(*fs, make_tar(many), "many").content;
    CHECK(fs->free_inodes() > 0);
    CHECK(content >= (40u << 20) + 6000 * 4096);
    // Fitting never goes below what the content needs, whatever is asked.
    std::uint64_t fitted = fs->resize(8 << 20);
    CHECK(fitted >= (40u << 20));
    CHECK(fitted < (1u << 30));
    CHECK_FALSE(fs->has_journal());
    fs->add_journal();
    CHECK(fs->has_journal());
    CHECK(fs->read("/big") == big);
    CHECK(fs->read("/many/f5999") == "5999");
    fs->close();
  }
  require_clean(img);
  CHECK(run({"dumpe2fs", "-h", img}).find("has_journal") != std::string::npos);
}

TEST_CASE("growth has a limit: a declared size beyond it is refused before any data", "[ext4][populate][attack]") {
  test::TempDir t;
  std::string img = t / "limit.ext4";
  ext4::mkfs(img, 16 << 20, {}, false);
  auto fs = ext4::Filesystem::open(img, true);
  fs->set_growth_limit(64 << 20);
  std::string why = rejection(*fs, make_tar({{"big", 'f', std::string(80 << 20, 'z')}}));
  CHECK(why.find("larger than the space left") != std::string::npos);
  CHECK(fs->size_bytes() <= (64u << 20));
  fs->close();
  require_clean(img);
}

TEST_CASE("a tar cut inside a GNU long name fails cleanly (found by the fuzzer)", "[ext4][populate][attack]") {
  // libarchive reports this without an error message.
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  archive_write_set_format_gnutar(a.get());
  std::vector<char> buf(1 << 16);
  size_t used = 0;
  REQUIRE(archive_write_open_memory(a.get(), buf.data(), buf.size(), &used) == ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, std::string(300, 'a').c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 0);
  REQUIRE(archive_write_header(a.get(), e) == ARCHIVE_OK);
  archive_entry_free(e);
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
  auto* p = reinterpret_cast<const std::byte*>(buf.data());
  std::vector<std::byte> cut(p, p + 512 + 100);  // the long-name header, then part of the name

  test::TempDir t;
  std::string img = t / "root.ext4";
  ext4::mkfs(img, 16 << 20);
  auto fs = ext4::Filesystem::open(img, true);
  CHECK(test::error_code_of([&] { apply(*fs, cut, "cut"); }) == "EINVAL");
  fs->close();
  require_clean(img);
}
