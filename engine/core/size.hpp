#pragma once
// Sizes as users and scripts write them, with one rule everywhere (config,
// CLI flags, banger.units, and every native that takes a size):
//  * an integer is a number of bytes;
//  * a string is a number with a binary unit: "4096B", "64K"/"64KiB",
//    "512M"/"512MiB", "1.5G"/"1.5GiB", "2T"/"2TiB" ("KB", "MB", ... are
//    binary too); a string without a unit is refused, never guessed;
//  * a size is positive and at most kMaxSize (16 TiB, the largest ext4
//    without the 64bit feature: nothing banger sizes is meant to be bigger).
#include <cstdint>
#include <string_view>

namespace banger::size {

inline constexpr std::uint64_t kMaxSize = std::uint64_t{16} << 40;

// Bytes, or throws Error("EINVAL", reason) saying what is wrong.
std::uint64_t parse(std::string_view text);
std::uint64_t check_bytes(long long bytes);

}  // namespace banger::size
