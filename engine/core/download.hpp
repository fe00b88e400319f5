#pragma once
// HTTP(S)/file downloads through libcurl, written atomically and verified:
// the bytes go to a temporary file beside the destination, are hashed while
// they arrive, and are renamed into place only when the SHA-256 matches.
#include <cstdint>
#include <functional>
#include <string>

namespace banger {

struct DownloadOptions {
  std::string expected_sha256;  // empty: no check (only for small metadata)
  std::uint64_t max_bytes = 0;  // 0: no limit
  std::uint64_t expected_size = 0;  // 0: any; else the exact size (also the limit), checked before the sha256
  long timeout_s = 0;           // whole transfer; 0: none (low-speed abort still applies)
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

struct DownloadResult {
  std::uint64_t bytes = 0;
  std::string sha256;
};

DownloadResult download(const std::string& url, const std::string& dest, const DownloadOptions& opts = {});

// A small document (a catalog, a manifest) into memory, at most max_bytes.
std::string fetch_text(const std::string& url, std::uint64_t max_bytes = 16 << 20);

}  // namespace banger
