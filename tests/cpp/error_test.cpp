#include <catch2/catch.hpp>

#include <cerrno>

#include "engine/core/error.hpp"

TEST_CASE("Error::sys names the errno and the subject", "[core]") {
  banger::Error e = banger::Error::sys(ENOENT, "open", "/nope");
  CHECK(e.code() == "ENOENT");
  CHECK(std::string(e.what()) == "open: No such file or directory: /nope");
}

TEST_CASE("errno_name falls back to a number", "[core]") {
  CHECK(banger::errno_name(EACCES) == "EACCES");
  CHECK(banger::errno_name(123456) == "E123456");
}
