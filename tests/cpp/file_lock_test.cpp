#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "engine/core/error.hpp"
#include "engine/core/file_lock.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

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
  std::this_thread::sleep_for(100ms);  // let the waiter open the old file and block on it
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
