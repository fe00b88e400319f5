#pragma once
// Conversion between Lua values and nlohmann::json, shared by the json
// module and every binding that takes or returns structured data.
//
// Lua tables are ambiguous: a table is encoded as an array when it is marked
// (metatable field __jsontype = "array") or when its keys are exactly 1..n
// with n > 0; otherwise as an object. An empty unmarked table is an object.
// Decoded arrays carry the array mark so they round-trip. json.null is a
// light userdata sentinel.
//
// Both directions allow at most kJsonMaxDepth nested arrays/objects; a table
// that contains itself (a cycle) is refused. Nothing here raises a Lua error
// (no longjmp across C++ frames): failures are exceptions, Raise for a Lua
// value that cannot be encoded, banger::Error("EINVAL") for a document.
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include <string_view>

namespace banger::lua {

inline constexpr int kJsonMaxDepth = 200;

nlohmann::json to_json(lua_State* L, int idx);
void push_json(lua_State* L, const nlohmann::json& j);
// Parses a document, refusing one nested deeper than kJsonMaxDepth.
nlohmann::json parse_json(std::string_view text);
// Pushes the shared metatable that marks arrays.
void push_array_mark(lua_State* L);
void* json_null_sentinel();

}  // namespace banger::lua
