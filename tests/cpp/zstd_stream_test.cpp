// zstd streams with libzstd (kernel bundles): what ZstdSink writes, zstd(1)
// and zstd_source read back, across chunk boundaries; zstd_source refuses a
// cut-off, corrupt or empty stream instead of returning a short one.
#include <catch2/catch.hpp>

#include "engine/core/byte_source.hpp"
#include "engine/core/error.hpp"
#include "engine/core/process.hpp"
#include "engine/core/zstd_stream.hpp"
#include "byte_source_fixtures.hpp"
#include "test_util.hpp"

using namespace banger;

namespace {

std::string compress(const std::string& data, int level, int workers, size_t write_chunk = 100000) {
  std::string out;
  ZstdSink sink([&](std::string_view d) { out.append(d); }, level, workers);
  for (size_t off = 0; off < data.size(); off += write_chunk) sink.write(std::string_view(data).substr(off, write_chunk));
  sink.finish();
  CHECK(sink.bytes_in() == data.size());
  return out;
}

std::string decompress(const std::string& z, size_t chunk) {
  test::Chunked in(z, chunk);
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

}  // namespace

TEST_CASE("zstd: what ZstdSink writes round-trips, through zstd(1) too", "[zstd]") {
  const std::string data = test::mixed_bytes(3 << 20, 7, 8192);
  for (int workers : {0, 2}) {
    std::string z = compress(data, 3, workers);
    CHECK(z.size() < data.size());
    for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{7}}) CHECK(decompress(z, chunk) == data);
    CHECK(zstd_cli({"-d"}, z) == data);
  }
  CHECK(decompress(compress("", 1, 0), 64) == "");
}

TEST_CASE("zstd: zstd_source reads zstd(1)'s output, concatenated frames as one stream", "[zstd]") {
  const std::string a = test::mixed_bytes(200000, 7, 8192), b = "second frame";
  CHECK(decompress(zstd_cli({"-19"}, a) + zstd_cli({}, b), 1000) == a + b);
}

TEST_CASE("zstd: a cut-off, corrupt, trailing-garbage or empty stream is refused", "[zstd]") {
  const std::string data = test::mixed_bytes(500000, 7, 8192);
  const std::string z = compress(data, 3, 0);
  for (size_t cut : {size_t{1}, size_t{4}, z.size() / 2}) {
    CHECK(test::error_of([&] { decompress(z.substr(0, z.size() - cut), 4096); }) ==
          "EINVAL: test-stream: truncated zstd stream");
  }
  std::string flipped = z;
  flipped[flipped.size() / 2] ^= 0x55;
  CHECK(test::error_of([&] { decompress(flipped, 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
  CHECK(test::error_of([&] { decompress(z + "garbage!", 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
  CHECK(test::error_of([&] { decompress("", 4096); }) == "EINVAL: test-stream: empty zstd stream");
  CHECK(test::error_of([&] { decompress("not zstd at all", 4096); }).rfind("EINVAL: test-stream: zstd: ", 0) == 0);
}

TEST_CASE("zstd: levels outside 1..19 are refused", "[zstd]") {
  auto sink = [](int level) { ZstdSink s([](std::string_view) {}, level); };
  CHECK(test::error_of([&] { sink(0); }) == "EINVAL: zstd level must be 1 to 19, not 0");
  CHECK(test::error_of([&] { sink(22); }) == "EINVAL: zstd level must be 1 to 19, not 22");
}
