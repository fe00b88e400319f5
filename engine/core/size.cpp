#include "engine/core/size.hpp"

#include <cctype>
#include <cmath>
#include <string>

#include "engine/core/error.hpp"

namespace banger::size {
namespace {

std::uint64_t unit_factor(std::string unit) {
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (unit == "b") return 1;
  const std::string_view prefixes = "kmgt";
  if (unit.empty() || prefixes.find(unit[0]) == std::string_view::npos) return 0;
  std::string_view rest = std::string_view(unit).substr(1);
  if (!rest.empty() && rest != "b" && rest != "ib") return 0;
  return std::uint64_t{1} << (10 * (prefixes.find(unit[0]) + 1));
}

std::string max_text() { return std::to_string(kMaxSize >> 40) + "TiB"; }

}  // namespace

std::uint64_t check_bytes(long long bytes) {
  if (bytes <= 0) throw Error("EINVAL", "size must be positive, got " + std::to_string(bytes));
  if (static_cast<unsigned long long>(bytes) > kMaxSize) {
    throw Error("EINVAL", std::to_string(bytes) + " bytes is too large (at most " + max_text() + ")");
  }
  return static_cast<std::uint64_t>(bytes);
}

std::uint64_t parse(std::string_view text) {
  const std::string quoted = "'" + std::string(text.substr(0, 40)) + (text.size() > 40 ? "...'" : "'");
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  size_t i = 0;
  long double value = 0;
  size_t digits = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, ++digits) value = value * 10 + (s[i] - '0');
  if (i < s.size() && s[i] == '.') {
    long double scale = 0.1L;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, ++digits, scale /= 10) {
      value += (s[i] - '0') * scale;
    }
  }
  if (digits == 0) throw Error("EINVAL", quoted + " is not a size (use e.g. 512MiB, 2GiB)");
  if (value == 0) throw Error("EINVAL", "size must be positive, got " + quoted);
  std::string_view unit = s.substr(i);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front()))) unit.remove_prefix(1);
  if (unit.empty()) {
    throw Error("EINVAL", quoted + " has no unit (write e.g. " + std::string(s) + "MiB; B for bytes)");
  }
  std::uint64_t factor = unit_factor(std::string(unit));
  if (factor == 0) throw Error("EINVAL", quoted + " has an unknown unit (use B, KiB, MiB, GiB or TiB)");
  long double bytes = std::floor(value * static_cast<long double>(factor));
  if (bytes > static_cast<long double>(kMaxSize)) throw Error("EINVAL", quoted + " is too large (at most " + max_text() + ")");
  if (bytes < 1) throw Error("EINVAL", "size must be positive, got " + quoted);
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace banger::size
