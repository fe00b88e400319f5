#pragma once
#include <string>

namespace banger {

// A whole file into memory with read(2): errors become banger::Error
// (ENOENT, EACCES, ...) naming the path, never an iostream exception.
std::string read_file(const std::string& path);

}  // namespace banger
