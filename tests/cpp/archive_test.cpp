// Workspace tars: a round trip, and extraction of hostile archives (they
// come out of a VM) that must not write a byte outside the destination.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "engine/archive/tar.hpp"
#include "engine/core/error.hpp"
#include "engine/core/read_file.hpp"
#include "test_util.hpp"

using banger::test::TempDir;
namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string name;
  mode_t type = AE_IFREG;
  std::string content;
  std::string link;  // symlink target or hardlink target
  mode_t perm = 0644;
};

Entry file(std::string name, std::string content, mode_t perm = 0644) {
  Entry e;
  e.name = std::move(name);
  e.content = std::move(content);
  e.perm = perm;
  return e;
}
Entry symlink_to(std::string name, std::string target) {
  Entry e;
  e.name = std::move(name);
  e.type = AE_IFLNK;
  e.link = std::move(target);
  return e;
}
Entry hardlink_to(std::string name, std::string target) {
  Entry e = symlink_to(std::move(name), std::move(target));
  e.type = 0;
  return e;
}
Entry special(std::string name, mode_t type) {
  Entry e;
  e.name = std::move(name);
  e.type = type;
  return e;
}

void write_tar(const std::string& path, const std::vector<Entry>& entries) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& en : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.name.c_str());
    archive_entry_set_perm(e, en.perm);
    if (en.type == 0) {  // hardlink
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, en.link.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, en.type);
      if (en.type == AE_IFLNK) archive_entry_set_symlink(e, en.link.c_str());
      archive_entry_set_size(e, static_cast<la_int64_t>(en.content.size()));
    }
    archive_write_header(a, e);
    if (!en.content.empty()) archive_write_data(a, en.content.data(), en.content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::string extract_code(const TempDir& tmp, const std::vector<Entry>& entries, std::uint64_t max = 1 << 30) {
  write_tar(tmp / "t.tar", entries);
  fs::remove_all(tmp / "dest");
  fs::create_directories(tmp / "dest");
  return banger::test::error_code_of([&] { banger::archive::extract_tar(tmp / "t.tar", tmp / "dest", max); });
}

}  // namespace

TEST_CASE("workspace tar round trip keeps files, modes and symlinks", "[archive]") {
  TempDir tmp;
  fs::create_directories(tmp / "src/sub");
  { std::FILE* f = std::fopen((tmp / "src/a.txt").c_str(), "w"); std::fputs("alpha\n", f); std::fclose(f); }
  { std::FILE* f = std::fopen((tmp / "src/sub/run.sh").c_str(), "w"); std::fputs("#!/bin/sh\n", f); std::fclose(f); }
  ::chmod((tmp / "src/sub/run.sh").c_str(), 0755);
  REQUIRE(::symlink("a.txt", (tmp / "src/link").c_str()) == 0);
  CHECK(banger::archive::create_tar(tmp / "w.tar", tmp / "src", {"a.txt", "sub/run.sh", "link"}) == 3);
  fs::create_directories(tmp / "out");
  auto r = banger::archive::extract_tar(tmp / "w.tar", tmp / "out", 1 << 20);
  CHECK(r.entries == 3);
  CHECK(banger::read_file(tmp / "out/a.txt") == "alpha\n");
  CHECK(fs::read_symlink(tmp / "out/link") == "a.txt");
  struct stat st {};
  REQUIRE(::stat((tmp / "out/sub/run.sh").c_str(), &st) == 0);
  CHECK((st.st_mode & 0111) != 0);
}

TEST_CASE("hostile tars from a guest write nothing outside the destination", "[archive][attack]") {
  TempDir tmp;
  fs::create_directories(tmp / "outside");
  auto outside_untouched = [&] { return fs::is_empty(tmp / "outside"); };

  CHECK(extract_code(tmp, {file("../outside/evil", "x")}) == "EINVAL");
  CHECK(extract_code(tmp, {file("a/../../outside/evil", "x")}) == "EINVAL");
  CHECK(extract_code(tmp, {file(tmp / "outside/abs", "x")}) == "EINVAL");
  // a symlink out of the tree, then a write through it
  CHECK(extract_code(tmp, {symlink_to("esc", tmp / "outside"), file("esc/evil", "x")}) == "EARCHIVE");
  CHECK(extract_code(tmp, {symlink_to("esc", "../outside"), file("esc/evil", "x")}) == "EARCHIVE");
  // a hardlink to a file outside
  CHECK(extract_code(tmp, {hardlink_to("h", "../outside/x")}) == "EINVAL");
  CHECK(extract_code(tmp, {hardlink_to("h", "/etc/passwd")}) == "EINVAL");
  // more content than the cap allows (a real 2 MiB entry against a 1 MiB
  // cap: a writer pads an entry to its declared size, so a test tar that
  // merely declared a terabyte would be a terabyte on disk)
  CHECK(extract_code(tmp, {file("big", std::string(2 << 20, 'x'))}, 1 << 20) == "EFBIG");
  CHECK(outside_untouched());
}

TEST_CASE("extraction creates no devices and restores no set-id bits", "[archive][attack]") {
  TempDir tmp;
  CHECK(extract_code(tmp, {special("dev", AE_IFCHR), special("fifo", AE_IFIFO), file("suid", "x", 04755)}).empty());
  CHECK_FALSE(fs::exists(tmp / "dest/dev"));
  CHECK_FALSE(fs::exists(tmp / "dest/fifo"));
  struct stat st {};
  REQUIRE(::stat((tmp / "dest/suid").c_str(), &st) == 0);
  CHECK((st.st_mode & 06000) == 0);
  CHECK(st.st_uid == ::getuid());
}

namespace {
std::string extract_strict(const TempDir& tmp, const std::vector<Entry>& entries) {
  write_tar(tmp / "t.tar", entries);
  fs::remove_all(tmp / "dest");
  fs::create_directories(tmp / "dest");
  return banger::test::error_code_of([&] {
    banger::archive::extract_tar(tmp / "t.tar", tmp / "dest", banger::archive::ExtractOptions{.strict = true});
  });
}
}  // namespace

TEST_CASE("strict extraction (release bundles) refuses what a release never holds", "[archive][attack]") {
  TempDir tmp;
  CHECK(extract_strict(tmp, {file("../evil", "x")}) == "EINVAL");
  CHECK(extract_strict(tmp, {file(tmp / "abs", "x")}) == "EINVAL");
  CHECK(extract_strict(tmp, {special("dev", AE_IFCHR)}) == "EINVAL");
  CHECK(extract_strict(tmp, {special("blk", AE_IFBLK)}) == "EINVAL");
  CHECK(extract_strict(tmp, {special("fifo", AE_IFIFO)}) == "EINVAL");
  CHECK(extract_strict(tmp, {file("suid", "x", 04755)}) == "EINVAL");
  // symlinks whose target leaves the tree, even without a write through them
  CHECK(extract_strict(tmp, {symlink_to("abs", "/etc/passwd")}) == "EINVAL");
  CHECK(extract_strict(tmp, {symlink_to("up", "../x")}) == "EINVAL");
  CHECK(extract_strict(tmp, {symlink_to("a/b/up", "../../../x")}) == "EINVAL");
  CHECK(extract_strict(tmp, {symlink_to("./a/up", "../../x")}) == "EINVAL");
  CHECK(extract_strict(tmp, {symlink_to("a/in", "b/../../../x")}) == "EINVAL");
  CHECK_FALSE(fs::exists(tmp / "dest/up"));
  // inside the tree: kept, and modes restored as archived
  CHECK(extract_strict(tmp, {file("bin/tool", "#!/bin/sh\n", 0755), symlink_to("lib/link", "../bin/tool"),
                             symlink_to("a/b/c", "../../bin/./tool")})
            .empty());
  CHECK(fs::read_symlink(tmp / "dest/lib/link") == "../bin/tool");
  struct stat st {};
  REQUIRE(::stat((tmp / "dest/bin/tool").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
}
