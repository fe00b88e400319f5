// Finding the host's programs the way a regular Debian user's PATH cannot:
// the sbin directories after PATH, and a missing one named with its package.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include "engine/core/error.hpp"
#include "engine/core/host_tools.hpp"
#include "engine/core/process.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

// Sets PATH for one test and puts the old one back.
class PathFor {
 public:
  explicit PathFor(const std::string& path) {
    if (const char* old = std::getenv("PATH")) old_ = old;
    ::setenv("PATH", path.c_str(), 1);
  }
  ~PathFor() {
    if (old_) ::setenv("PATH", old_->c_str(), 1);
    else ::unsetenv("PATH");
  }
  PathFor(const PathFor&) = delete;
  PathFor& operator=(const PathFor&) = delete;

 private:
  std::optional<std::string> old_;
};

// Debian 12's ENV_PATH for regular users (/etc/login.defs): no sbin.
constexpr const char* kUserPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games";

process::SpawnOptions argv(std::vector<std::string> a) { return process::SpawnOptions{std::move(a), {}, {}, {}, false, {}, {}, {}}; }

}  // namespace

TEST_CASE("a regular user's PATH still reaches the sbin programs", "[host_tools]") {
  PathFor p(kUserPath);
  std::string found = host_tools::find("resize2fs");
  INFO(found);
  CHECK((found == "/usr/local/sbin/resize2fs" || found == "/usr/sbin/resize2fs" || found == "/sbin/resize2fs"));
  // And spawn runs it: resize2fs -P on a real image answers with its minimum.
  test::TempDir t;
  auto mk = process::run(argv({"mkfs.ext4", "-q", "-F", t / "fs.img", "8M"}));
  REQUIRE(mk.status.shell_code() == 0);
  auto r = process::run(argv({"resize2fs", "-P", t / "fs.img"}));
  INFO(r.err);
  CHECK(r.status.shell_code() == 0);
  CHECK(r.out.find("Estimated minimum size of the filesystem:") != std::string::npos);
}

TEST_CASE("PATH comes first", "[host_tools]") {
  test::TempDir t;
  std::string own = t / "resize2fs";
  {
    std::FILE* f = std::fopen(own.c_str(), "w");
    REQUIRE(f);
    std::fputs("#!/bin/sh\necho mine\n", f);
    std::fclose(f);
  }
  REQUIRE(::chmod(own.c_str(), 0755) == 0);
  PathFor p(t.path() + ":" + kUserPath);
  CHECK(host_tools::find("resize2fs") == own);
  CHECK(process::run(argv({"resize2fs"})).out == "mine\n");
}

TEST_CASE("a missing program is one line naming its Debian package", "[host_tools]") {
  test::TempDir empty;
  PathFor p(empty.path());  // mmdebstrap is in /usr/bin: out of reach now
  try {
    process::spawn(argv({"mmdebstrap", "--version"}));
    FAIL("expected ENOTOOL");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOTOOL");
    CHECK(std::string(e.what()) ==
          "mmdebstrap not found (searched PATH, /usr/local/sbin, /usr/sbin, /sbin): "
          "install it with 'apt-get install mmdebstrap'");
  }
  try {
    process::run(argv({"qemu-img", "info", "x"}));
    FAIL("expected ENOTOOL");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).ends_with(": install it with 'apt-get install qemu-utils'"));
  }
  try {
    process::spawn(argv({"banger-no-such-program"}));
    FAIL("expected ENOTOOL");
  } catch (const Error& e) {
    CHECK(e.code() == "ENOTOOL");
    CHECK(std::string(e.what()) == "banger-no-such-program not found (searched PATH, /usr/local/sbin, /usr/sbin, /sbin)");
  }
  CHECK(std::string(host_tools::not_found("firecracker").what()).find("Debian does not package it") != std::string::npos);
  CHECK(host_tools::package_of("/usr/sbin/resize2fs") == "e2fsprogs");
  CHECK(std::string(host_tools::not_found("/opt/q/qemu-system-x86_64").what()) ==
        "/opt/q/qemu-system-x86_64 is not an executable file: install it with 'apt-get install qemu-system-x86'");
}

TEST_CASE("an empty PATH entry is not the current directory", "[host_tools][attack]") {
  // execvp would run ./git from wherever banger was started (a repository
  // it is about to copy into a VM, say); banger's lookup never does.
  test::TempDir t;
  std::string planted = t / "git";
  {
    std::FILE* f = std::fopen(planted.c_str(), "w");
    REQUIRE(f);
    std::fputs("#!/bin/sh\necho planted\n", f);
    std::fclose(f);
  }
  REQUIRE(::chmod(planted.c_str(), 0755) == 0);
  int rc = test::in_child([&] {
    if (::chdir(t.path().c_str()) != 0) return 97;
    ::setenv("PATH", ":/nonexistent", 1);
    std::string found = host_tools::find("git");
    return found.empty() ? 0 : 1;
  });
  CHECK(rc == 0);
}
