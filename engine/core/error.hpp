#pragma once
// The engine's one error type. Every operational failure is a banger::Error
// carrying a short machine-readable code (errno names such as "ENOENT" for
// system errors, upper-case words such as "EDIGEST" for banger's own) and a
// human message that already names the subject. The binding layer turns it
// into `nil, message, code` for Lua; see docs/architecture.md.
#include <stdexcept>
#include <string>
#include <string_view>

namespace banger {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}

  const std::string& code() const noexcept { return code_; }

  // "what: strerror(errnum): subject", code = errno name.
  static Error sys(int errnum, std::string_view what, std::string_view subject = {});
  // Same, from the current errno.
  static Error last(std::string_view what, std::string_view subject = {});

 private:
  std::string code_;
};

// Name of an errno value ("ENOENT"), or "E<number>" when glibc has none.
std::string errno_name(int errnum);

// Throws Error::last(what, subject) when rc < 0; returns rc otherwise.
inline long check_sys(long rc, std::string_view what, std::string_view subject = {}) {
  if (rc < 0) throw Error::last(what, subject);
  return rc;
}

}  // namespace banger
