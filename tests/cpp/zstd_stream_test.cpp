// zstd streams with libzstd (kernel bundles): what ZstdSink writes, zstd(1)
// and zstd_source read back, across chunk boundaries; zstd_source refuses a
// cut-off, corrupt or empty stream instead of returning a short one.
#include <catch2/catch.hpp>

#include "engine/core/byte_source.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/zstd_stream.hpp"

using namespace banger;

namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 7;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245 + 12345;
    s[i] = (i / 8192) % 2 ? static_cast<char>(x >> 24) : static_cast<char>('a' + (x >> 28));
  }
  return s;
}

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

 private:
  std::string data_;
  size_t chunk_, off_ = 0;
};

std::string compress(const std::string& data, int level, int workers, size_t write_chunk = 100000) {
  std::string out;
  ZstdSink sink([&](std::string_view d) { out.append(d); }, level, workers);
  for (size_t off = 0; off < data.size(); off += write_chunk) sink.write(std::string_view(data).substr(off, write_chunk));
  sink.finish();
  CHECK(sink.bytes_in() == data.size());
  return out;
}

std::string decompress(const std::string& z, size_t chunk) {
  Chunked in(z, chunk);
  auto s = zstd_source(in);
  std::string out;
  for (auto c = s->read(); !c.empty(); c = s->read()) out.append(reinterpret_cast<const char*>(c.data()), c.size());
  return out;
}

std::string zstd_cli(const std::vector<std::string>& args, const std::string& input) {
  process::SpawnOptions o;
  o.argv = {"zstd", "-q", "-c"};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  auto r = process::run(o, input);
  REQUIRE(r.status.shell_code() == 0);
  return r.out;
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

TEST_CASE("zstd: what ZstdSink writes round-trips, through zstd(1) too", "[zstd]") {
  const std::string data = pattern(3 << 20);
  for (int workers : {0, 2}) {
    std::string z = compress(data, 3, workers);
    CHECK(z.size() < data.size());
    for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{7}}) CHECK(decompress(z, chunk) == data);
    CHECK(zstd_cli({"-d"}, z) == data);
  }
  CHECK(decompress(compress("", 1, 0), 64) == "");
}

TEST_CASE("zstd: zstd_source reads zstd(1)'s output, concatenated frames as one stream", "[zstd]") {
  const std::string a = pattern(200000), b = "second frame";
  CHECK(decompress(zstd_cli({"-19"}, a) + zstd_cli({}, b), 1000) == a + b);
}

TEST_CASE("zstd: a cut-off, corrupt, trailing-garbage or empty stream is refused", "[zstd]") {
  const std::string data = pattern(500000);
  const std::string z = compress(data, 3, 0);
  for (size_t cut : {size_t{1}, size_t{4}, z.size() / 2}) {
    CHECK(code_of([&] { decompress(z.substr(0, z.size() - cut), 4096); }) ==
          "EINVAL: test-stream: truncated zstd stream");
  }
  std::string flipped = z;
  flipped[flipped.size() / 2] ^= 0x55;
  CHECK(code_of([&] { decompress(flipped, 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
  CHECK(code_of([&] { decompress(z + "garbage!", 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
  CHECK(code_of([&] { decompress("", 4096); }) == "EINVAL: test-stream: empty zstd stream");
  CHECK(code_of([&] { decompress("not zstd at all", 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
}

TEST_CASE("zstd: levels outside 1..19 are refused", "[zstd]") {
  auto sink = [](int level) { ZstdSink s([](std::string_view) {}, level); };
  CHECK(code_of([&] { sink(0); }) == "EINVAL: zstd level must be 1 to 19, not 0");
  CHECK(code_of([&] { sink(22); }) == "EINVAL: zstd level must be 1 to 19, not 22");
}
