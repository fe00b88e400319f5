#include "engine/core/gunzip_source.hpp"

#include <isa-l/igzip_lib.h>

#include <cstring>
#include <vector>

#include "engine/core/error.hpp"

namespace banger {
namespace {

constexpr size_t kOutChunk = 256 << 10;

bool gzip_magic(const std::byte* p) { return p[0] == std::byte{0x1f} && p[1] == std::byte{0x8b}; }

// Serves `head` (bytes already taken from `in` to look at them), then `in`.
class Replay final : public ByteSource {
 public:
  Replay(ByteSource& in, std::vector<std::byte> head) : in_(in), head_(std::move(head)) {}
  std::span<const std::byte> read() override {
    if (!head_done_) {
      head_done_ = true;
      if (!head_.empty()) return {head_.data(), head_.size()};
    }
    return in_.read();
  }
  std::string describe() const override { return in_.describe(); }
  void cancel() override { in_.cancel(); }

 private:
  ByteSource& in_;
  std::vector<std::byte> head_;
  bool head_done_ = false;
};

class Gunzip final : public ByteSource {
 public:
  explicit Gunzip(std::unique_ptr<ByteSource> in) : in_(std::move(in)), st_(std::make_unique<inflate_state>()), out_(kOutChunk) {
    isal_inflate_init(st_.get());
    st_->crc_flag = ISAL_GZIP;  // parse the header, check CRC-32 and length at the end
  }

  std::span<const std::byte> read() override {
    for (;;) {
      if (done_) return {};
      if (st_->avail_in == 0 && !in_eof_) {
        auto chunk = in_->read();
        if (chunk.empty()) {
          in_eof_ = true;
        } else {
          st_->next_in = reinterpret_cast<uint8_t*>(const_cast<std::byte*>(chunk.data()));
          st_->avail_in = static_cast<uint32_t>(chunk.size());
        }
      }
      if (member_done_) {
        // Another member follows, or the stream is over (anything else
        // after the last member is read to the end and ignored).
        if (st_->avail_in < 2 && !in_eof_) {
          if (st_->avail_in == 1) carry_one();
          continue;
        }
        if (st_->avail_in >= 2 && gzip_magic(reinterpret_cast<const std::byte*>(st_->next_in))) {
          isal_inflate_reset(st_.get());  // keeps next_in/avail_in and crc_flag
          member_done_ = false;
        } else {
          drain();
          return {};
        }
      }
      st_->next_out = reinterpret_cast<uint8_t*>(out_.data());
      st_->avail_out = static_cast<uint32_t>(out_.size());
      int rc = isal_inflate(st_.get());
      if (rc != ISAL_DECOMP_OK) {
        throw Error("EINVAL", describe() + ": not valid gzip data (" +
                                  (rc == ISAL_INCORRECT_CHECKSUM ? std::string("checksum mismatch")
                                                                 : "igzip error " + std::to_string(rc)) + ")");
      }
      size_t produced = out_.size() - st_->avail_out;
      if (st_->block_state == ISAL_BLOCK_FINISH) member_done_ = true;
      if (produced) return {out_.data(), produced};
      if (!member_done_ && st_->avail_in == 0 && in_eof_)
        throw Error("EINVAL", describe() + ": gzip data ends early (truncated)");
    }
  }
  std::string describe() const override { return in_->describe(); }
  void cancel() override { in_->cancel(); }

 private:
  // One byte left of a chunk and a member boundary to look across: keep it
  // while the next chunk comes (chunks of the source are only valid until
  // its next read).
  void carry_one() {
    auto chunk = in_->read();
    carry_.assign(1, static_cast<std::byte>(*st_->next_in));
    if (chunk.empty()) {
      in_eof_ = true;
    } else {
      carry_.insert(carry_.end(), chunk.begin(), chunk.end());
    }
    st_->next_in = reinterpret_cast<uint8_t*>(carry_.data());
    st_->avail_in = static_cast<uint32_t>(carry_.size());
  }
  void drain() {
    while (!in_eof_) in_eof_ = in_->read().empty();
    done_ = true;
  }

  std::unique_ptr<ByteSource> in_;
  std::unique_ptr<inflate_state> st_;  // about 90 KiB: not on the stack
  std::vector<std::byte> out_;
  std::vector<std::byte> carry_;
  bool in_eof_ = false, member_done_ = false, done_ = false;
};

// A non-owning handle, so Gunzip can own its input either way.
class Borrowed final : public ByteSource {
 public:
  explicit Borrowed(ByteSource& in) : in_(in) {}
  std::span<const std::byte> read() override { return in_.read(); }
  std::string describe() const override { return in_.describe(); }
  void cancel() override { in_.cancel(); }

 private:
  ByteSource& in_;
};

}  // namespace

std::unique_ptr<ByteSource> gunzip_source(ByteSource& in) { return std::make_unique<Gunzip>(std::make_unique<Borrowed>(in)); }

std::unique_ptr<ByteSource> gunzip_if_gzip(ByteSource& in) {
  std::vector<std::byte> head;
  while (head.size() < 2) {
    auto chunk = in.read();
    if (chunk.empty()) break;
    head.insert(head.end(), chunk.begin(), chunk.end());
  }
  bool gz = head.size() >= 2 && gzip_magic(head.data());
  auto replay = std::make_unique<Replay>(in, std::move(head));
  if (!gz) return replay;
  return std::make_unique<Gunzip>(std::move(replay));
}

}  // namespace banger
