#include "engine/core/error.hpp"

#include <cerrno>
#include <cstring>

namespace banger {

std::string errno_name(int errnum) {
  if (const char* name = strerrorname_np(errnum)) return name;
  std::string fallback = "E";
  fallback += std::to_string(errnum);
  return fallback;
}

Error Error::sys(int errnum, std::string_view what, std::string_view subject) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(errnum);
  if (!subject.empty()) {
    msg += ": ";
    msg += subject;
  }
  return Error(errno_name(errnum), msg);
}

Error Error::last(std::string_view what, std::string_view subject) {
  return sys(errno, what, subject);
}

}  // namespace banger
