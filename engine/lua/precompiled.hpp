#pragma once
// The stdlib, compiled to bytecode at build time (cmake/lua_precompile.cpp)
// so a command does not spend its start-up compiling the modules it loads.
// The files on disk stay the truth: a chunk is used only while its file's
// content is the one it was compiled from; an edited file is compiled as
// before.
#include <lua.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace banger::lua::precompiled {

struct Chunk {
  const char* module;           // "banger.vm"
  std::uint64_t source_hash;    // content_hash() of the file it came from
  const unsigned char* code;    // lua_dump output, with debug information
  std::size_t size;
  std::size_t name_offset;      // where the placeholder source name's length byte is
  std::size_t name_bytes;       // that byte plus the name
};

extern const Chunk kChunks[];
extern const std::size_t kChunkCount;

// FNV-1a: a staleness check against the trusted stdlib directory, not a
// defence against anyone (whoever can write the stdlib runs code anyway).
inline std::uint64_t content_hash(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Puts a package.searchers entry before the file searcher: a stdlib module
// whose file matches its chunk loads from the bytecode, under the file's
// name (errors and tracebacks read as before); anything else falls through.
void install_searcher(lua_State* L);

}  // namespace banger::lua::precompiled
