// One OCI layer from an ext4 image (engine/image/layer_writer): the tar as
// libarchive reads it back, the digests as independent hashes compute them,
// and the layer applied into a fresh image giving the same tree.
#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>

#include "engine/core/byte_source.hpp"
#include "engine/core/cancel.hpp"
#include "engine/core/gunzip_source.hpp"
#include "engine/core/sha256.hpp"
#include "engine/ext4/filesystem.hpp"
#include "engine/ext4/populate.hpp"
#include "engine/image/layer_writer.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

const std::string kCap("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

// An image with every kind of entry the writer must carry.
void make_image(const std::string& path) {
  auto fs = ext4::Filesystem::create(path, 64ull << 20);
  fs->set_owner("/", {0, 0, 0711, 1000000000, 7});
  fs->mkdir("/d", {5, 6, 02755, -315532800, 123456789}, false);  // 1960
  std::string big(2'500'000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 5);
  fs->write("/d/f", big, {1000, 70000, 04755, 4102444800, 250000000});  // 2100
  fs->hardlink("/d/f", "/d/g");
  fs->hardlink("/d/f", "/h");
  fs->set_xattr("/d/f", "security.capability", kCap);
  fs->set_xattr("/d", "user.note", std::string("\0\xff", 2));
  fs->symlink("d/f", "/s", {7, 8, 0777, 1600000000, 1});
  fs->symlink(std::string(300, 'x'), "/long", {});
  fs->mknod("/c", 'c', 300, 70000, {0, 0, 0620, 1600000000, 0});
  fs->mknod("/b", 'b', 7, 9, {});
  fs->mknod("/p", 'p', 0, 0, {9, 9, 0600, 1600000000, 0});
  fs->write("/empty", "", {0, 0, 0, 1, 0});
  fs->close();
}

std::string gunzip_sha256(const std::string& path) {
  auto file = open_file_source(path);
  auto plain = gunzip_source(*file);
  Sha256 h;
  for (auto chunk = plain->read(); !chunk.empty(); chunk = plain->read()) h.update(chunk.data(), chunk.size());
  return "sha256:" + h.hex();
}

struct TarEntry {
  std::string hardlink, symlink;
  unsigned type = 0;
  la_int64_t size = 0;
  long nsec = 0;
  unsigned major = 0, minor = 0;
  std::map<std::string, std::string> xattrs;
};

std::vector<std::pair<std::string, TarEntry>> read_tar(const std::string& path) {
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  REQUIRE(archive_read_open_filename(a.get(), path.c_str(), 1 << 16) == ARCHIVE_OK);
  std::vector<std::pair<std::string, TarEntry>> out;
  archive_entry* e = nullptr;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    TarEntry t;
    if (archive_entry_hardlink(e)) t.hardlink = archive_entry_hardlink(e);
    if (archive_entry_symlink(e)) t.symlink = archive_entry_symlink(e);
    t.type = archive_entry_filetype(e);
    t.size = archive_entry_size(e);
    t.nsec = archive_entry_mtime_nsec(e);
    t.major = static_cast<unsigned>(archive_entry_rdevmajor(e));
    t.minor = static_cast<unsigned>(archive_entry_rdevminor(e));
    archive_entry_xattr_reset(e);
    const char* name;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
      t.xattrs[name] = std::string(static_cast<const char*>(value), size);
    out.emplace_back(archive_entry_pathname(e), t);
  }
  return out;
}

// Everything the engine can say about a tree, inode numbers aside.
std::map<std::string, std::string> describe(const std::string& image) {
  auto fs = ext4::Filesystem::open(image, false);
  std::map<std::string, std::string> out;
  fs->walk([&](const std::string& p, const ext4::Stat& st) {
    std::string d = st.type + " " + std::to_string(st.mode) + " " + std::to_string(st.uid) + ":" + std::to_string(st.gid) +
                    " " + std::to_string(st.mtime) + "." + std::to_string(st.mtime_nsec) + " nlink " +
                    std::to_string(st.nlink) + " dev " + std::to_string(st.rdev_major) + ":" + std::to_string(st.rdev_minor) +
                    " -> " + st.target;
    if (st.type == "file") d += " " + std::to_string(st.size) + " " + sha256_hex(fs->read(p));
    for (auto& [n, v] : fs->xattrs(p)) d += " " + n + "=" + sha256_hex(v);
    out[p] = d;
  });
  return out;
}

}  // namespace

TEST_CASE("layer_writer: a pax tar of every entry, digests of the gzip and the tar, the same bytes twice") {
  test::TempDir dir;
  make_image(dir / "src.ext4");
  auto fs = ext4::Filesystem::open(dir / "src.ext4", false);
  image::LayerResult r = image::write_layer(*fs, dir / "layer.tar.gz");
  CHECK(r.digest == "sha256:" + sha256_file_hex(dir / "layer.tar.gz"));
  CHECK(r.diff_id == gunzip_sha256(dir / "layer.tar.gz"));
  CHECK(r.size == std::filesystem::file_size(dir / "layer.tar.gz"));
  CHECK(r.skipped.empty());
  image::LayerResult again = image::write_layer(*fs, dir / "again.tar.gz");
  CHECK(again.digest == r.digest);
  CHECK(again.diff_id == r.diff_id);

  auto entries = read_tar(dir / "layer.tar.gz");
  std::vector<std::string> names;
  std::map<std::string, TarEntry> by;
  for (auto& [n, t] : entries) {
    names.push_back(n);
    by[n] = t;
  }
  CHECK(names == std::vector<std::string>{"./", "b", "c", "d/", "d/f", "d/g", "empty", "h", "long", "lost+found/", "p", "s"});
  CHECK(r.entries == names.size());
  CHECK(by["./"].nsec == 7);
  CHECK(by["d/f"].size == 2'500'000);
  CHECK(by["d/f"].xattrs["security.capability"] == kCap);
  CHECK(by["d/f"].nsec == 250000000);
  CHECK(by["d/"].xattrs["user.note"] == std::string("\0\xff", 2));
  // later names of one inode link to the first, and carry no data
  CHECK(by["d/g"].hardlink == "d/f");
  CHECK(by["h"].hardlink == "d/f");
  CHECK(by["h"].size == 0);
  CHECK(by["c"].type == AE_IFCHR);
  CHECK(by["c"].major == 300);
  CHECK(by["c"].minor == 70000);
  CHECK(by["b"].type == AE_IFBLK);
  CHECK(by["p"].type == AE_IFIFO);
  CHECK(by["s"].symlink == "d/f");
  CHECK(by["long"].symlink == std::string(300, 'x'));
}

TEST_CASE("layer_writer: the layer applied into a fresh image gives the same tree") {
  test::TempDir dir;
  make_image(dir / "src.ext4");
  {
    auto fs = ext4::Filesystem::open(dir / "src.ext4", false);
    image::write_layer(*fs, dir / "layer.tar.gz");
  }
  {
    auto dst = ext4::Filesystem::create(dir / "dst.ext4", 64ull << 20);
    auto src = open_file_source(dir / "layer.tar.gz");
    ext4::apply_layer(*dst, *src);
    dst->close();
  }
  auto a = describe(dir / "src.ext4");
  auto b = describe(dir / "dst.ext4");
  CHECK(a.size() == 12);
  for (auto& [p, d] : a) {
    INFO(p);
    CHECK(b[p] == d);
  }
  CHECK(b.size() == a.size());
}

TEST_CASE("layer_writer: Ctrl-C stops the writing and leaves no file") {
  test::TempDir dir;
  test::CancelReset reset;
  make_image(dir / "src.ext4");
  auto fs = ext4::Filesystem::open(dir / "src.ext4", false);
  cancel::request();
  CHECK(test::error_code_of([&] { image::write_layer(*fs, dir / "layer.tar.gz"); }) == "ECANCELED");
  CHECK_FALSE(std::filesystem::exists(dir / "layer.tar.gz"));
  cancel::reset();
  // an existing file is never overwritten
  { std::ofstream(dir / "taken") << "x"; }
  CHECK(test::error_code_of([&] { image::write_layer(*fs, dir / "taken"); }) == "EEXIST");
  CHECK(std::filesystem::file_size(dir / "taken") == 1);
}
