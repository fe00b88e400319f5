#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>

#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "test_util.hpp"

using namespace banger::process;
using namespace std::chrono_literals;

namespace {
SpawnOptions sh(const std::string& script) { return SpawnOptions{{"sh", "-c", script}, {}, {}, {}, false, {}, {}, {}}; }
}  // namespace

TEST_CASE("run captures stdout, stderr and the exit code", "[process]") {
  auto r = run(sh("echo out; echo err >&2; exit 7"));
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(r.status.exited);
  CHECK(r.status.code == 7);
}

TEST_CASE("run feeds stdin", "[process]") {
  std::string big(1 << 20, 'x');
  auto r = run(SpawnOptions{{"wc", "-c"}, {}, {}, {}, false, {}, {}, {}}, big);
  CHECK(r.out == std::to_string(big.size()) + "\n");
}

TEST_CASE("a killed child reports its signal", "[process]") {
  auto r = run(sh("kill -TERM $$"));
  CHECK_FALSE(r.status.exited);
  CHECK(r.status.signal == SIGTERM);
  CHECK(r.status.shell_code() == 128 + SIGTERM);
}

TEST_CASE("run enforces a timeout and kills the child", "[process]") {
  try {
    run(sh("sleep 30"), {}, 200ms);
    FAIL("expected a timeout");
  } catch (const banger::Error& e) {
    CHECK(e.code() == "ETIMEDOUT");
  }
}

TEST_CASE("no descriptor but 0-2 leaks into a child", "[process][security]") {
  // Deliberately without O_CLOEXEC: closefrom in the spawn must still stop it.
  int leaky = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaky > 2);
  auto r = run(sh("ls /proc/self/fd"));
  ::close(leaky);
  // ls itself holds one directory fd (3) while listing.
  CHECK(r.out == "0\n1\n2\n3\n");
}

TEST_CASE("passed descriptors arrive as 3, 4, ... and nothing else does", "[process][security]") {
  banger::test::TempDir tmp;
  // Opened close-on-exec, as everything banger opens is: passing must
  // still deliver them, in order, and the leaky one must still be stopped.
  int a = ::open((tmp / "a").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  int b = ::open((tmp / "b").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  int leaky = ::open("/dev/null", O_RDONLY);
  SpawnOptions o = sh("readlink /proc/self/fd/3 /proc/self/fd/4; [ -e /proc/self/fd/5 ] && echo leaked; true");
  o.pass_fds = {b, a};
  auto r = run(o);
  ::close(a);
  ::close(b);
  ::close(leaky);
  CHECK(r.out == tmp / "b" + "\n" + tmp / "a" + "\n");
}

TEST_CASE("the chosen umask reaches the child and never loosens", "[process][security]") {
  banger::test::Umask parent(022);
  auto opts = sh("umask");
  opts.umask = 077;
  CHECK(run(opts).out == "0077\n");
  // The parent's umask is restored.
  CHECK(banger::test::Umask(027).previous() == 022);
  // A looser request still keeps the parent's bits.
  banger::test::Umask stricter(027);
  opts.umask = 0;
  CHECK(run(opts).out == "0027\n");
}

TEST_CASE("detached children get their own session", "[process]") {
  auto opts = sh("echo $$; cut -d' ' -f6 /proc/$$/stat");
  opts.new_session = true;
  auto r = run(opts);
  auto nl = r.out.find('\n');
  REQUIRE(nl != std::string::npos);
  CHECK(r.out.substr(0, nl) == r.out.substr(nl + 1, r.out.size() - nl - 2));
}

TEST_CASE("spawn/wait/kill and cmdline", "[process]") {
  Child c = spawn(SpawnOptions{{"sleep", "30"}, {}, {}, {}, false, {}, {}, {}});
  // posix_spawn returns once the child is inside execve, but the kernel
  // fills in the new argv area a moment later: poll briefly.
  std::vector<std::string> args;
  CHECK(banger::test::eventually([&] { return !(args = cmdline(c.pid())).empty(); }));
  REQUIRE(args.size() == 2);
  CHECK(args[0] == "sleep");
  CHECK(args[1] == "30");
  CHECK_FALSE(c.wait(50ms).has_value());
  c.kill(SIGKILL);
  auto st = c.wait(5s);
  REQUIRE(st.has_value());
  CHECK(st->signal == SIGKILL);
  CHECK(cmdline(c.pid()).empty());
}

TEST_CASE("stdout to a file and a missing binary", "[process]") {
  banger::test::TempDir t;
  auto opts = sh("echo logged");
  opts.out = Stdio::file(t / "log");
  run(opts);
  struct stat st {};
  REQUIRE(::stat((t / "log").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  try {
    spawn(SpawnOptions{{"/nonexistent/binary"}, {}, {}, {}, false, {}, {}, {}});
    FAIL("expected ENOTOOL");
  } catch (const banger::Error& e) {
    CHECK(e.code() == "ENOTOOL");
    CHECK(std::string(e.what()) == "/nonexistent/binary is not an executable file");
  }
}
