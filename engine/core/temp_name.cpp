#include "engine/core/temp_name.hpp"

#include <sys/random.h>

#include <cerrno>

#include "engine/core/error.hpp"

namespace banger {

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno != EINTR) throw Error::last("getrandom");
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string temp_name(std::string_view stem) { return std::string(stem) + random_hex(6); }

}  // namespace banger
