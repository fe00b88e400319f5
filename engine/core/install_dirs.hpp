#pragma once
#include <string>

namespace banger::install {

// Directory holding banger's bundled Lua ("stdlib/" and "recipes/"):
// $BANGER_LUA_DIR if set, else <exe>/../share/banger/lua when banger is
// installed, else the source checkout it was built from.
std::string lua_dir();

// Absolute path of the running executable.
std::string self_exe();

}  // namespace banger::install
