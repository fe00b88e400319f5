#include "engine/lua/precompiled.hpp"

#include <cstring>
#include <string>

#include "engine/core/read_file.hpp"

namespace banger::lua::precompiled {
namespace {

const Chunk* find(const char* module) {
  for (std::size_t i = 0; i < kChunkCount; ++i)
    if (std::strcmp(kChunks[i].module, module) == 0) return &kChunks[i];
  return nullptr;
}

// The chunk with its placeholder source name replaced by "@path" (lundump
// reads the name's size + 1 as 7-bit groups, most significant first, the
// last one marked with the high bit).
std::string with_source(const Chunk& c, const std::string& path) {
  const std::string name = "@" + path;
  std::string size;
  for (std::size_t x = name.size() + 1; x != 0; x >>= 7) size.insert(size.begin(), static_cast<char>(x & 0x7f));
  size.back() = static_cast<char>(size.back() | 0x80);
  const char* code = reinterpret_cast<const char*>(c.code);
  std::string out(code, c.name_offset);
  out += size;
  out += name;
  out.append(code + c.name_offset + c.name_bytes, c.size - c.name_offset - c.name_bytes);
  return out;
}

// package.searchers entry: (module) -> loader, path; or nothing, so that
// require's "not found" message stays the file searcher's.
int search(lua_State* L) {
  const char* module = luaL_checkstring(L, 1);
  const Chunk* chunk = find(module);
  if (!chunk) {
    return 0;
  }
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushvalue(L, 1);
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  if (!lua_isstring(L, -1)) {
    return 0;
  }
  const std::string path = lua_tostring(L, -1);
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception&) {
    text.clear();  // unreadable: the file searcher reports it
  }
  if (text.empty() || content_hash(text) != chunk->source_hash) {
    return 0;
  }
  const std::string code = with_source(*chunk, path);
  if (luaL_loadbufferx(L, code.data(), code.size(), path.c_str(), "b") != LUA_OK) {
    return 0;
  }
  lua_pushstring(L, path.c_str());
  return 2;
}

}  // namespace

void install_searcher(lua_State* L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  // after package.preload (1), before the Lua file searcher (2)
  const lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = n; i >= 2; --i) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, search);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

}  // namespace banger::lua::precompiled
