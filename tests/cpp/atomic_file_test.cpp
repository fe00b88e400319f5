#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "test_util.hpp"

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
size_t entries(const std::string& dir) {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}
}  // namespace

TEST_CASE("atomic_write_file replaces content with the requested mode", "[atomic]") {
  banger::test::TempDir t;
  std::string p = t / "f";
  banger::atomic_write_file(p, "one", 0640);
  banger::atomic_write_file(p, "two", 0600);
  CHECK(slurp(p) == "two");
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(entries(t.path()) == 1);
}

TEST_CASE("an uncommitted AtomicFile leaves the target untouched and no temp", "[atomic]") {
  banger::test::TempDir t;
  std::string p = t / "f";
  banger::atomic_write_file(p, "old");
  {
    banger::AtomicFile f(p);
    f.write("partial");
  }
  CHECK(slurp(p) == "old");
  CHECK(entries(t.path()) == 1);
}

TEST_CASE("atomic writes replace a symlink rather than writing through it", "[atomic][attack]") {
  banger::test::TempDir t;
  std::string victim = t / "victim";
  banger::atomic_write_file(victim, "precious");
  std::string link = t / "link";
  REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
  banger::atomic_write_file(link, "new");
  CHECK(slurp(victim) == "precious");
  struct stat st {};
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
}
