#include "engine/core/zstd_stream.hpp"

#include <zstd.h>

#include <string>
#include <vector>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"

namespace banger {
namespace {

constexpr int kWindowLogMax = 27;

std::string zstd_error(size_t code) { return ZSTD_getErrorName(code); }

}  // namespace

struct ZstdSink::Impl {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx{ZSTD_createCCtx(), ZSTD_freeCCtx};
  std::vector<char> buf;
};

ZstdSink::ZstdSink(std::function<void(std::string_view)> out, int level, int workers)
    : impl_(std::make_unique<Impl>()), out_(std::move(out)) {
  if (!impl_->ctx) throw Error("ENOMEM", "ZSTD_createCCtx");
  if (level < 1 || level > 19) throw Error("EINVAL", "zstd level must be 1 to 19, not " + std::to_string(level));
  size_t r = ZSTD_CCtx_setParameter(impl_->ctx.get(), ZSTD_c_compressionLevel, level);
  if (ZSTD_isError(r)) throw Error("EINVAL", "zstd level " + std::to_string(level) + ": " + zstd_error(r));
  ZSTD_CCtx_setParameter(impl_->ctx.get(), ZSTD_c_checksumFlag, 1);
  // A library built without threads refuses workers: compress on this
  // thread then, same output format.
  if (workers > 0) ZSTD_CCtx_setParameter(impl_->ctx.get(), ZSTD_c_nbWorkers, workers);
  impl_->buf.resize(ZSTD_CStreamOutSize());
}

ZstdSink::~ZstdSink() = default;

void ZstdSink::pump(std::string_view data, bool end) {
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  for (;;) {
    ZSTD_outBuffer out{impl_->buf.data(), impl_->buf.size(), 0};
    size_t left = ZSTD_compressStream2(impl_->ctx.get(), &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    if (ZSTD_isError(left)) throw Error("EIO", "zstd compression: " + zstd_error(left));
    if (out.pos > 0) out_(std::string_view(impl_->buf.data(), out.pos));
    // Continue: done once the input is consumed. End: once the frame is
    // fully flushed (left == 0).
    if (end ? left == 0 : in.pos == in.size) return;
  }
}

void ZstdSink::write(std::string_view data) {
  if (finished_) throw Error("EINVAL", "write after ZstdSink::finish");
  in_ += data.size();
  pump(data, false);
}

void ZstdSink::finish() {
  if (finished_) return;
  pump({}, true);
  finished_ = true;
}

namespace {

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(ByteSource& in) : in_(in), ctx_(ZSTD_createDCtx(), ZSTD_freeDCtx) {
    if (!ctx_) throw Error("ENOMEM", "ZSTD_createDCtx");
    ZSTD_DCtx_setParameter(ctx_.get(), ZSTD_d_windowLogMax, kWindowLogMax);
    out_.resize(ZSTD_DStreamOutSize());
  }

  std::span<const std::byte> read() override {
    for (;;) {
      cancel::check();
      if (pending_.pos == pending_.size && !eof_) {
        auto chunk = in_.read();
        if (chunk.empty()) {
          eof_ = true;
        } else {
          pending_ = {chunk.data(), chunk.size(), 0};
        }
      }
      bool drained = pending_.pos == pending_.size && eof_;
      if (drained && frame_left_ == 0) {
        if (!seen_frame_) throw Error("EINVAL", in_.describe() + ": empty zstd stream");
        return {};
      }
      // With the input drained, a frame that is not finished may still have
      // output buffered in the decoder; one that produces none is cut off.
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t r = ZSTD_decompressStream(ctx_.get(), &out, &pending_);
      if (ZSTD_isError(r)) throw Error("EINVAL", in_.describe() + ": zstd: " + zstd_error(r));
      seen_frame_ = true;
      frame_left_ = r;
      if (drained && out.pos == 0) throw Error("EINVAL", in_.describe() + ": truncated zstd stream");
      if (out.pos > 0) return {reinterpret_cast<const std::byte*>(out_.data()), out.pos};
    }
  }

  std::string describe() const override { return in_.describe(); }
  void cancel() override { in_.cancel(); }

 private:
  ByteSource& in_;
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx_;
  std::vector<char> out_;
  ZSTD_inBuffer pending_{nullptr, 0, 0};
  size_t frame_left_ = 0;
  bool eof_ = false;
  bool seen_frame_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> zstd_source(ByteSource& in) { return std::make_unique<ZstdSource>(in); }

}  // namespace banger
