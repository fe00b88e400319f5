#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "engine/core/error.hpp"
#include "engine/core/paths.hpp"
#include "test_util.hpp"

using banger::Error;
using banger::test::TempDir;

namespace {
mode_t mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("runtime dir is created 0700", "[paths]") {
  TempDir t;
  std::string dir = t / "a/b/banger";
  banger::paths::ensure_private_dir(dir);
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(t / "a/b") == 0700);
}

TEST_CASE("a stale runtime dir with loose bits is tightened to 0700", "[paths]") {
  TempDir t;
  std::string dir = t / "banger";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(dir.c_str(), 0777) == 0);
  banger::paths::ensure_private_dir(dir);
  CHECK(mode_of(dir) == 0700);
}

TEST_CASE("a runtime dir that is a symlink is refused", "[paths][attack]") {
  TempDir t;
  std::string target = t / "elsewhere";
  REQUIRE(::mkdir(target.c_str(), 0700) == 0);
  std::string dir = t / "banger";
  REQUIRE(::symlink(target.c_str(), dir.c_str()) == 0);
  CHECK(banger::test::error_code_of([&] { banger::paths::ensure_private_dir(dir); }) == "ELOOP");
}

TEST_CASE("a runtime dir owned by another uid is refused", "[paths][attack]") {
  BANGER_NEEDS_ROOT("creates a directory owned by someone else");
  TempDir t;
  std::string dir = t / "banger";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(::chown(dir.c_str(), banger::test::kNobody, banger::test::kNobody) == 0);
  CHECK(banger::test::error_code_of([&] { banger::paths::ensure_private_dir(dir); }) == "EPERM");
  CHECK(mode_of(dir) == 0700);
}

TEST_CASE("the /tmp fallback refuses squatted or symlinked directories", "[paths][attack]") {
  BANGER_NEEDS_ROOT("acts as two users");
  using banger::test::kNobody;
  const std::string fallback = "/tmp/banger-runtime-" + std::to_string(kNobody);
  std::error_code ec;
  std::filesystem::remove_all(fallback, ec);
  TempDir home;
  REQUIRE(::chown(home.path().c_str(), kNobody, kNobody) == 0);

  auto ensure_as_nobody = [&]() {
    return banger::test::in_child([&] {
      ::unsetenv("XDG_RUNTIME_DIR");
      ::setenv("HOME", home.path().c_str(), 1);
      ::unsetenv("XDG_CONFIG_HOME");
      ::unsetenv("XDG_STATE_HOME");
      ::unsetenv("XDG_CACHE_HOME");
      if (::setresgid(kNobody, kNobody, kNobody) != 0 || ::setresuid(kNobody, kNobody, kNobody) != 0) return 97;
      auto layout = banger::paths::resolve();
      if (!layout.runtime_is_fallback || layout.runtime != fallback) return 96;
      try {
        banger::paths::ensure(layout);
      } catch (const Error& e) {
        return e.code() == "EPERM" ? 10 : e.code() == "ELOOP" ? 11 : 12;
      }
      return 0;
    });
  };

  SECTION("squatted by root") {
    REQUIRE(::mkdir(fallback.c_str(), 0777) == 0);
    CHECK(ensure_as_nobody() == 10);
  }
  SECTION("a symlink planted by someone else") {
    TempDir target;
    REQUIRE(::symlink(target.path().c_str(), fallback.c_str()) == 0);
    CHECK(ensure_as_nobody() == 11);
  }
  SECTION("a clean fallback is created 0700 and owned by the user") {
    CHECK(ensure_as_nobody() == 0);
    struct stat st {};
    REQUIRE(::lstat(fallback.c_str(), &st) == 0);
    CHECK(st.st_uid == kNobody);
    CHECK((st.st_mode & 07777) == 0700);
  }
  SECTION("a stale 0755 fallback of the user's own is tightened") {
    REQUIRE(::mkdir(fallback.c_str(), 0755) == 0);
    REQUIRE(::chown(fallback.c_str(), kNobody, kNobody) == 0);
    REQUIRE(::chmod(fallback.c_str(), 0755) == 0);
    CHECK(ensure_as_nobody() == 0);
    CHECK(mode_of(fallback) == 0700);
  }
  std::filesystem::remove_all(fallback, ec);
}

TEST_CASE("XDG variables choose the layout", "[paths]") {
  int rc = banger::test::in_child([] {
    ::setenv("HOME", "/home/u", 1);
    ::setenv("XDG_CONFIG_HOME", "/c", 1);
    ::unsetenv("XDG_STATE_HOME");
    ::setenv("XDG_CACHE_HOME", "relative/is/ignored", 1);
    ::setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
    auto l = banger::paths::resolve();
    return (l.config == "/c/banger" && l.state == "/home/u/.local/state/banger" && l.cache == "/home/u/.cache/banger" &&
            l.runtime == "/run/user/7/banger" && !l.runtime_is_fallback)
               ? 0
               : 1;
  });
  CHECK(rc == 0);
}
