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

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    // Half text-like, half noise: both deflate code paths get exercised.
    s[i] = (i / 4096) % 2 ? static_cast<char>(x >> 24) : static_cast<char>('a' + (x >> 28));
  }
  return s;
}

// Serves a string in chunks of `chunk` bytes; counts what it served.
class Chunked final : public ByteSource {
 public:
  Chunked(std::string data, size_t chunk) : data_(std::move(data)), chunk_(chunk) {}
  std::span<const std::byte> read() override {
    size_t n = std::min(chunk_, data_.size() - off_);
    auto* p = reinterpret_cast<const std::byte*>(data_.data()) + off_;
    off_ += n;
    return {p, n};
  }
  std::string describe() const override { return "test-stream"; }
  size_t served() const { return off_; }

 private:
  std::string data_;
  size_t chunk_, off_ = 0;
};

std::string drain(ByteSource& s) {
  std::string out;
  for (auto c = s.read(); !c.empty(); c = s.read()) out.append(reinterpret_cast<const char*>(c.data()), c.size());
  return out;
}

std::string code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code() + ": " + e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("gunzip: one member, several members, any chunking", "[gunzip]") {
  std::string a = pattern(700000, 1), b = pattern(3000, 2), c = pattern(1, 3);
  std::string one = gzip(a);
  std::string many = gzip(a, "-1") + gzip(b, "-9") + gzip(c) + gzip("");
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
    INFO("chunk " << chunk);
    Chunked s1(one, chunk);
    CHECK(drain(*gunzip_source(s1)) == a);
    Chunked s2(many, chunk);
    CHECK(drain(*gunzip_source(s2)) == a + b + c);
  }
}

TEST_CASE("gunzip: trailing bytes are read but ignored, bad data is refused", "[gunzip]") {
  std::string a = pattern(100000, 4);
  std::string gz = gzip(a);
  {
    Chunked s(gz + std::string(1000, '\0'), 333);
    CHECK(drain(*gunzip_source(s)) == a);
    CHECK(s.served() == gz.size() + 1000);  // a digest over the raw stream sees it all
  }
  {
    std::string bad = gz;
    bad[bad.size() - 6] ^= 1;  // the CRC-32 in the trailer
    Chunked s(bad, 4096);
    CHECK_THAT(code_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL") && Catch::Contains("checksum"));
  }
  {
    Chunked s(gz.substr(0, gz.size() / 2), 4096);
    CHECK_THAT(code_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL") && Catch::Contains("truncated"));
  }
  {
    Chunked s(gz.substr(0, 10) + std::string(100, '\xff'), 4096);
    CHECK_THAT(code_of([&] { drain(*gunzip_source(s)); }), Catch::StartsWith("EINVAL"));
  }
}

TEST_CASE("gunzip_if_gzip: gzip is inflated, anything else passes through", "[gunzip]") {
  std::string a = pattern(50000, 5);
  std::string gz = gzip(a);
  Chunked s1(gz, 1);  // the magic is split across reads
  CHECK(drain(*gunzip_if_gzip(s1)) == a);
  Chunked s2(a, 1000);
  CHECK(drain(*gunzip_if_gzip(s2)) == a);
  Chunked s3("", 10);
  CHECK(drain(*gunzip_if_gzip(s3)).empty());
  Chunked s4("\x1f", 10);
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
  std::string e = code_of([&] {
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
