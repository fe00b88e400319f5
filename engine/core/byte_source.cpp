#include "engine/core/byte_source.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "engine/core/cancel.hpp"
#include "engine/core/error.hpp"
#include "engine/core/unique_fd.hpp"

namespace banger {
namespace {

class FileSource final : public ByteSource {
 public:
  FileSource(const std::string& path, size_t chunk) : path_(path), buf_(chunk) {
    fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) throw Error::last("open", path);
  }

  std::span<const std::byte> read() override {
    cancel::check();
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf_.data(), buf_.size());
      if (n >= 0) return {buf_.data(), static_cast<size_t>(n)};
      if (errno != EINTR) throw Error::last("read", path_);
    }
  }
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  std::vector<std::byte> buf_;
  UniqueFd fd_;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(std::vector<std::byte> data, std::string name) : data_(std::move(data)), name_(std::move(name)) {}
  std::span<const std::byte> read() override {
    if (done_) return {};
    done_ = true;
    return {data_.data(), data_.size()};
  }
  std::string describe() const override { return name_; }

 private:
  std::vector<std::byte> data_;
  std::string name_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> open_file_source(const std::string& path, size_t chunk) {
  return std::make_unique<FileSource>(path, chunk);
}

std::unique_ptr<ByteSource> memory_source(std::vector<std::byte> data, std::string name) {
  return std::make_unique<MemorySource>(std::move(data), std::move(name));
}

}  // namespace banger
