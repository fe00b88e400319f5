#include "engine/core/gzip_writer.hpp"

#include <isa-l/igzip_lib.h>

#include <vector>

#include "engine/core/error.hpp"

namespace banger {

struct GzipWriter::Impl {
  Sink sink;
  isal_zstream z{};
  std::vector<std::uint8_t> level_buf = std::vector<std::uint8_t>(ISAL_DEF_LVL1_DEFAULT);
  std::vector<std::uint8_t> out = std::vector<std::uint8_t>(1 << 20);
  bool finished = false;

  // Runs the compressor over what is queued in z, emptying `out` into the
  // sink whenever it fills; with `last`, until the trailer is out.
  void pump(bool last) {
    z.end_of_stream = last ? 1 : 0;
    for (;;) {
      z.next_out = out.data();
      z.avail_out = static_cast<std::uint32_t>(out.size());
      int rc = isal_deflate(&z);
      if (rc != COMP_OK) throw Error("EIO", "gzip compression failed (igzip error " + std::to_string(rc) + ")");
      size_t n = out.size() - z.avail_out;
      if (n) sink(reinterpret_cast<const std::byte*>(out.data()), n);
      bool done = last ? z.internal_state.state == ZSTATE_END : z.avail_in == 0;
      if (done) return;
    }
  }
};

GzipWriter::GzipWriter(Sink sink) : impl_(std::make_unique<Impl>()) {
  impl_->sink = std::move(sink);
  isal_deflate_init(&impl_->z);
  impl_->z.gzip_flag = IGZIP_GZIP;
  impl_->z.level = 1;
  impl_->z.level_buf = impl_->level_buf.data();
  impl_->z.level_buf_size = static_cast<std::uint32_t>(impl_->level_buf.size());
  impl_->z.flush = NO_FLUSH;
}

GzipWriter::~GzipWriter() = default;

void GzipWriter::write(const void* data, size_t len) {
  if (impl_->finished) throw Error("EINVAL", "gzip stream already finished");
  const auto* p = static_cast<const std::uint8_t*>(data);
  while (len > 0) {
    // avail_in is 32 bits: feed at most 1 GiB at a time.
    auto n = static_cast<std::uint32_t>(std::min<size_t>(len, 1u << 30));
    impl_->z.next_in = const_cast<std::uint8_t*>(p);
    impl_->z.avail_in = n;
    impl_->pump(false);
    p += n;
    len -= n;
  }
}

void GzipWriter::finish() {
  if (impl_->finished) return;
  impl_->z.next_in = nullptr;
  impl_->z.avail_in = 0;
  impl_->pump(true);
  impl_->finished = true;
}

}  // namespace banger
