#pragma once
// "banger.oci.stream": a ByteSource handed to Lua (a layer blob while it
// downloads, from oci's pull:open). Made by one binding module and consumed
// by another (fs:apply_layer), so the handle type is declared here.
#include "engine/core/byte_source.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {

template <>
struct HandleTraits<ByteSource> {
  static constexpr const char* name = "banger.oci.stream";
  static std::string describe(const ByteSource& s) { return s.describe(); }
};

// The stream at idx, taken out of its handle (which is closed afterwards):
// a stream is read once.
inline std::unique_ptr<ByteSource> take_stream(lua_State* L, int idx) {
  Box<ByteSource>* box = check_box<ByteSource>(L, idx);
  if (!box->ptr) throw Raise("attempt to use a closed banger.oci.stream (a stream is read once)");
  return std::move(box->ptr);
}

}  // namespace banger::lua
