#pragma once
// Conversion between Lua values and nlohmann::json, shared by the json
// module and every binding that takes or returns structured data.
//
// Lua tables are ambiguous: a table is encoded as an array when it is marked
// (metatable field __jsontype = "array") or when its keys are exactly 1..n
// with n > 0; otherwise as an object. An empty unmarked table is an object.
// Decoded arrays carry the array mark so they round-trip. json.null is a
// light userdata sentinel.
#include <lua.hpp>
#include <nlohmann/json.hpp>

namespace banger::lua {

nlohmann::json to_json(lua_State* L, int idx);
void push_json(lua_State* L, const nlohmann::json& j);
// Pushes the shared metatable that marks arrays.
void push_array_mark(lua_State* L);
void* json_null_sentinel();

}  // namespace banger::lua
