#pragma once
// Stamped at build time by cmake/WriteBuildInfo.cmake.
namespace banger::build {
extern const char* const version;
extern const char* const commit;
extern const char* const built_at;
}  // namespace banger::build
