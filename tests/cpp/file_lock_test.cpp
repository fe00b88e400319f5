#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <optional>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/file_lock.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace {

// How many of this process's descriptors name `path`.
int descriptors_naming(const std::string& path) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code rec;
    if (std::filesystem::read_symlink(e.path(), rec) == path) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("a removed lock leaves no file, and a waiter takes a new one", "[file_lock]") {
  banger::test::TempDir tmp;
  std::string path = tmp / "vm-x.lock";
  {
    banger::FileLock held(path, true, 0ms);
    held.remove();
    CHECK_FALSE(std::filesystem::exists(path));
  }

  auto holder = std::make_unique<banger::FileLock>(path, true, 0ms);
  // A second lock on the same file (another open file description: flock
  // conflicts even within one process) must wait while the first is held.
  CHECK_THROWS_AS(banger::FileLock(path, true, 50ms), banger::Error);

  std::atomic<bool> locked{false};
  std::optional<banger::FileLock> waiter;
  std::thread t([&] {
    waiter.emplace(path, true, 10s);
    locked = true;
  });
  banger::test::JoinOnExit join_waiter(t, [&] { holder.reset(); });
  // Until the waiter has opened the old file (a second descriptor of ours
  // names it) and so waits on it.
  CHECK(banger::test::eventually([&] { return descriptors_naming(path) >= 2; }));
  CHECK_FALSE(locked.load());
  holder->remove();
  holder.reset();
  t.join();
  REQUIRE(locked.load());
  // The waiter holds the file the path names now, not the unlinked one
  // (whose inode number the new file may well reuse): a third locker waits.
  REQUIRE(std::filesystem::exists(path));
  CHECK_THROWS_AS(banger::FileLock(path, true, 50ms), banger::Error);
  waiter.reset();
  CHECK_NOTHROW(banger::FileLock(path, true, 0ms));
}
