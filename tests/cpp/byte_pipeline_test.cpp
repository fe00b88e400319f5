// The byte sources layers travel through: igzip decompression (multi-member,
// chunk boundaries anywhere, checksums) and the read-ahead thread (order,
// errors with their codes, prompt shutdown of a waiting read).
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/core/byte_source.hpp"
#include "engine/core/error.hpp"
#include "engine/core/gunzip_source.hpp"
#include "engine/core/prefetch_source.hpp"
#include "engine/core/process.hpp"
#include "byte_source_fixtures.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

std::string gzip(const std::string& data, const std::string& level = "-6") {
  process::SpawnOptions o;
  o.argv = {"gzip", "-n", "-c", level};
  auto r = process::run(o, data);
  REQUIRE(r.status.shell_code() == 0);
  return r.out;
}

std::string drain(ByteSource& s) {
  std::string out;
  for (auto c = s.read(); !c.empty(); c = s.read()) out.append(reinterpret_cast<const char*>(c.data()), c.size());
  return out;
}

}  // namespace

TEST_CASE("gunzip: one member, several members, any chunking", "[gunzip]") {
  std::string a = test::mixed_bytes(700000, 1, 4096), b = test::mixed_bytes(3000, 2, 4096),
              c = test::mixed_bytes(1, 3, 4096);
  std::string one = gzip(a);
  std::string many = gzip(a, "-1") + gzip(b, "-9") + gzip(c) + gzip("");
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
    INFO("chunk " << chunk);
    test::Chunked s1(one, chunk);
    CHECK(drain(*gunzip_source(s1)) == a);
    test::Chunked s2(many, chunk);
    CHECK(drain(*gunzip_source(s2)) == a + b + c);
  }
}

TEST_CASE("gunzip: trailing bytes are read but ignored, bad data is refused", "[gunzip]") {
  std::string a = test::mixed_bytes(100000, 4, 4096);
  std::string gz = gzip(a);
  {
    test::Chunked s(gz + std::string(1000, '\0'), 333);
    CHECK(drain(*gunzip_source(s)) == a);
    CHECK(s.served() == gz.size() + 1000);  // a digest over the raw stream sees it all
  }
  {
    std::string bad = gz;
    bad[bad.size() - 6] ^= 1;  // the CRC-32 in the trailer
    test::Chunked s(bad, 4096);
    CHECK_THAT(test::error_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL") && Catch::Contains("checksum"));
  }
  {
    test::Chunked s(gz.substr(0, gz.size() / 2), 4096);
    CHECK_THAT(test::error_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL") && Catch::Contains("truncated"));
  }
  {
    test::Chunked s(gz.substr(0, 10) + std::string(100, '\xff'), 4096);
    CHECK_THAT(test::error_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL"));
  }
}

TEST_CASE("gunzip_if_gzip: gzip is inflated, anything else passes through", "[gunzip]") {
  std::string a = test::mixed_bytes(50000, 5, 4096);
  std::string gz = gzip(a);
  test::Chunked s1(gz, 1);  // the magic is split across reads
  CHECK(drain(*gunzip_if_gzip(s1)) == a);
  test::Chunked s2(a, 1000);
  CHECK(drain(*gunzip_if_gzip(s2)) == a);
  test::Chunked s3("", 10);
  CHECK(drain(*gunzip_if_gzip(s3)).empty());
  test::Chunked s4("\x1f", 10);
  CHECK(drain(*gunzip_if_gzip(s4)) == "\x1f");
}

namespace {

// Chunks "0", "1", ... then fails with EDIGEST after `fail_after` of them.
class Counting final : public ByteSource {
 public:
  Counting(int n, int fail_after) : n_(n), fail_after_(fail_after) {}
  std::span<const std::byte> read() override {
    if (i_ == fail_after_) throw Error("EDIGEST", "blob sha256:x does not match");
    if (i_ == n_) return {};
    cur_ = std::to_string(i_++) + ",";
    return {reinterpret_cast<const std::byte*>(cur_.data()), cur_.size()};
  }
  std::string describe() const override { return "counting"; }

 private:
  int n_, fail_after_, i_ = 0;
  std::string cur_;
};

// A read that waits forever (a stalled download) until cancel().
class Stalled final : public ByteSource {
 public:
  std::span<const std::byte> read() override {
    std::unique_lock lk(mu_);
    waiting_ = true;
    cv_.wait(lk, [&] { return cancelled_; });
    throw Error("ECANCELED", "reading stopped");
  }
  std::string describe() const override { return "stalled"; }
  void cancel() override {
    std::lock_guard lk(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  bool waiting() {
    std::lock_guard lk(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  bool waiting_ = false;
};

}  // namespace

TEST_CASE("prefetch: chunks arrive in order, then the source's error", "[prefetch]") {
  std::string want;
  for (int i = 0; i < 1000; ++i) want += std::to_string(i) + ",";
  Counting all(1000, -1);
  CHECK(drain(*prefetch(all, 3)) == want);

  Counting failing(1000, 500);
  auto p = prefetch(failing, 4);
  std::string got;
  std::string e = test::error_of([&] {
    for (auto c = p->read(); !c.empty(); c = p->read()) got.append(reinterpret_cast<const char*>(c.data()), c.size());
  });
  CHECK_THAT(e, Catch::StartsWith("EDIGEST") && Catch::Contains("does not match"));
  CHECK(got == want.substr(0, want.find("500,")));
}

TEST_CASE("prefetch: dropping it stops a read that is waiting", "[prefetch]") {
  Stalled s;
  auto p = prefetch(s);
  REQUIRE(banger::test::eventually([&] { return s.waiting(); }));  // the thread is waiting in read()
  p.reset();  // returns (instead of hanging the test) because cancel() reaches that read
  CHECK(s.waiting());
}
