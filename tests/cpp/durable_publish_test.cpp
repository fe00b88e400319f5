// Durable publishing (publish_file, exchange_paths, the kernel catalog's
// replace) and the small file helpers (make_dirs, temp_name, write_all).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string_view>
#include <thread>

#include "engine/core/atomic_file.hpp"
#include "engine/core/error.hpp"
#include "engine/core/make_dirs.hpp"
#include "engine/core/process.hpp"
#include "engine/core/read_file.hpp"
#include "engine/core/temp_name.hpp"
#include "engine/core/write_all.hpp"
#include "engine/kernel/initramfs.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace banger;

namespace {

void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A version of the published file: 1 MiB of one byte, so a torn file shows.
std::string version(int i) { return std::string(1 << 20, static_cast<char>('a' + i % 26)); }

bool whole_version(const std::string& s) {
  return s.size() == (1u << 20) && s.find_first_not_of(s[0]) == std::string::npos;
}

}  // namespace

// Run by the next test under strace (hidden: Catch2 skips it unless named).
TEST_CASE("publish_file under strace", "[.publish-strace]") {
  const char* dir = std::getenv("BANGER_PUBLISH_DIR");
  REQUIRE(dir);
  publish_file(std::string(dir) + "/img.tmp", std::string(dir) + "/img");
}

TEST_CASE("publish_file fsyncs the file, renames it, then fsyncs the directory", "[atomic][publish]") {
  test::TempDir t;
  std::string dir = t / "store";
  fs::create_directory(dir);
  spit(dir + "/img", "old");
  spit(dir + "/img.tmp", "new");
  std::string log = t / "strace.log";
  process::SpawnOptions o;
  o.argv = {"strace", "-f", "-qq", "-o", log, "-e", "trace=openat,fsync,rename,renameat,renameat2",
            fs::read_symlink("/proc/self/exe").string(), "publish_file under strace"};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).rfind("ASAN_OPTIONS=", 0) != 0) env.emplace_back(*e);
  env.push_back("BANGER_PUBLISH_DIR=" + dir);
  // LeakSanitizer ptraces the process at exit, which strace already does.
  env.push_back("ASAN_OPTIONS=detect_leaks=0");
  o.env = env;
  auto r = process::run(o, {}, std::chrono::seconds(60));
  INFO(r.out << r.err);
  REQUIRE(r.status.exited);
  REQUIRE(r.status.code == 0);
  CHECK(read_file(dir + "/img") == "new");
  CHECK(!fs::exists(dir + "/img.tmp"));

  // The order that makes a crash safe: file data on disk, then the name,
  // then the directory entry on disk.
  std::istringstream lines(read_file(log));
  std::string line;
  int step = 0;
  std::string file_fd, dir_fd;
  std::smatch m;
  const std::regex open_file("openat\\(AT_FDCWD, \"" + dir + "/img\\.tmp\", [^)]*\\) = (\\d+)");
  const std::regex open_dir("openat\\(AT_FDCWD, \"" + dir + "\", [^)]*O_DIRECTORY[^)]*\\) = (\\d+)");
  while (std::getline(lines, line)) {
    if (step == 0 && std::regex_search(line, m, open_file)) {
      file_fd = m[1];
      step = 1;
    } else if (step == 1 && line.find("fsync(" + file_fd + ")") != std::string::npos && line.find("= 0") != std::string::npos) {
      step = 2;
    } else if (step == 2 && line.find("rename") != std::string::npos && line.find(dir + "/img.tmp") != std::string::npos) {
      step = 3;
    } else if (step == 3 && std::regex_search(line, m, open_dir)) {
      dir_fd = m[1];
      step = 4;
    } else if (step == 4 && line.find("fsync(" + dir_fd + ")") != std::string::npos && line.find("= 0") != std::string::npos) {
      step = 5;
    }
  }
  INFO(read_file(log));
  CHECK(step == 5);
}

TEST_CASE("publish_file killed at any moment leaves the old file or the new one, whole", "[atomic][publish]") {
  test::TempDir t;
  std::string target = t / "img";
  spit(target, version(0));
  for (int round = 0; round < 12; ++round) {
    pid_t pid = ::fork();
    if (pid == 0) {
      // Publishes versions as fast as it can until killed.
      for (int i = 1;; ++i) {
        std::string tmp = target + ".tmp-" + std::to_string(i);
        {
          std::ofstream f(tmp, std::ios::binary);
          f << version(i);
        }
        publish_file(tmp, target);
      }
    }
    REQUIRE(pid > 0);
    // Readers meanwhile see whole versions only.
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20 + 15 * round);
    int reads = 0;
    while (std::chrono::steady_clock::now() < until) {
      std::string s = read_file(target);
      REQUIRE(whole_version(s));
      ++reads;
    }
    ::kill(pid, SIGKILL);
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    CHECK(reads > 0);
    CHECK(whole_version(read_file(target)));
    for (const auto& n : names_in(t.path()))
      if (n != "img") fs::remove(t / n);  // the temporary the kill interrupted
  }
}

TEST_CASE("publish_file refuses a symlink or a directory as the file to publish", "[atomic][publish][attack]") {
  test::TempDir t;
  spit(t / "secret", "not yours");
  REQUIRE(::symlink((t / "secret").c_str(), (t / "link").c_str()) == 0);
  CHECK(test::error_code_of([&] { publish_file(t / "link", t / "img"); }) == "ELOOP");
  fs::create_directory(t / "d");
  CHECK(test::error_code_of([&] { publish_file(t / "d", t / "img"); }) == "EINVAL");
  CHECK(!fs::exists(t / "img"));
  spit(t / "a", "a");
  spit(t / "img", "old");
  CHECK(test::error_code_of([&] { publish_file(t / "a", t / "img", true); }) == "EEXIST");
  CHECK(read_file(t / "img") == "old");
}

TEST_CASE("exchange_paths swaps two trees without a moment where the target is missing", "[atomic][publish]") {
  test::TempDir t;
  fs::create_directory(t / "k");
  atomic_write_file(t / "k/manifest", "v0");
  std::atomic<bool> stop = false;
  std::atomic<int> missing = 0, reads = 0;
  std::thread reader([&] {
    while (!stop) {
      try {
        if (read_file(t / "k/manifest").rfind("v", 0) != 0) ++missing;
        ++reads;
      } catch (const Error&) {
        ++missing;
      }
    }
  });
  for (int i = 1; i <= 300; ++i) {
    fs::create_directory(t / "next");
    atomic_write_file(t / "next/manifest", "v" + std::to_string(i));
    exchange_paths(t / "next", t / "k");
    // The old tree is still whole, at the other name, until it is removed.
    CHECK(read_file(t / "next/manifest") == "v" + std::to_string(i - 1));
    CHECK(read_file(t / "k/manifest") == "v" + std::to_string(i));
    fs::remove_all(t / "next");
  }
  stop = true;
  reader.join();
  CHECK(reads > 0);
  CHECK(missing == 0);
  fs::create_directory(t / "next");
  CHECK(test::error_code_of([&] { exchange_paths(t / "next", t / "absent"); }) == "ENOENT");
}

TEST_CASE("a failing initramfs write leaves no file and no temporary", "[kernel][publish]") {
  test::TempDir t;
  spit(t / "agent", "AGENT");
  std::map<std::string, std::string> mods;  // "virtio" has no file: fails midway
  kernel::InitramfsSpec spec;
  spec.agent = t / "agent";
  spec.modules = {"virtio"};
  spec.module_files = &mods;
  fs::create_directory(t / "k");
  CHECK(test::error_code_of([&] { kernel::write_initramfs(t / "k/initrd.img", spec); }) == "ENOENT");
  CHECK(fs::is_empty(t / "k"));
  mods["virtio"] = "KO";
  kernel::write_initramfs(t / "k/initrd.img", spec);
  CHECK(names_in(t / "k") == std::vector<std::string>{"initrd.img"});
  struct stat st {};
  REQUIRE(::stat((t / "k/initrd.img").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
}

TEST_CASE("make_dirs creates what is missing and refuses a planted symlink when asked", "[fs][attack]") {
  test::TempDir t;
  std::string deep = t / "a/b/c";
  make_dirs(deep, 0700);
  CHECK(fs::is_directory(deep));
  struct stat st {};
  REQUIRE(::stat((t / "a/b").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  ::chmod((t / "a").c_str(), 0755);
  make_dirs(deep, 0700);  // existing: untouched
  REQUIRE(::stat((t / "a").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0755);

  fs::create_directory(t / "elsewhere");
  REQUIRE(::symlink((t / "elsewhere").c_str(), (t / "link").c_str()) == 0);
  CHECK_NOTHROW(make_dirs(t / "link", 0700));  // a user's own link (~/.config) is fine
  CHECK(test::error_code_of([&] { make_dirs(t / "link", 0700, true); }) == "EUNSAFE");
  spit(t / "file", "x");
  CHECK(test::error_code_of([&] { make_dirs(t / "file/sub", 0700); }) == "ENOTDIR");
  CHECK(test::error_code_of([&] { make_dirs(t / "file", 0700); }) == "ENOTDIR");
}

TEST_CASE("temp_name adds 12 random hex digits to its stem", "[fs]") {
  std::string a = temp_name("/x/.img.tmp-"), b = temp_name("/x/.img.tmp-");
  CHECK(std::regex_match(a, std::regex("/x/\\.img\\.tmp-[0-9a-f]{12}")));
  CHECK(a != b);
  CHECK(random_hex(3).size() == 6);
}

TEST_CASE("write_all delivers everything through a full non-blocking pipe", "[fs]") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
  UniqueFd r(p[0]), w(p[1]);
  std::string data(4 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string got;
  std::thread drain([&] {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(r.get(), buf, sizeof buf);
      if (n == 0) break;
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      else std::this_thread::yield();
    }
  });
  write_all(w.get(), data, "pipe");
  w.reset();
  drain.join();
  CHECK(got == data);
  test::TempDir t;
  UniqueFd f(::open((t / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  pwrite_all(f.get(), "world", 6, "f");
  pwrite_all(f.get(), "hello ", 0, "f");
  CHECK(read_file(t / "f") == "hello world");
  CHECK(test::error_code_of([&] { write_all(-1, "x", "nothing"); }) == "EBADF");
}
