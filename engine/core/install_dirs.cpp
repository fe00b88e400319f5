#include "engine/core/install_dirs.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace banger::install {
namespace fs = std::filesystem;

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

std::string lua_dir() {
  if (const char* env = std::getenv("BANGER_LUA_DIR"); env && *env) return env;
  std::error_code ec;
  std::string exe = self_exe();
  if (!exe.empty()) {
    fs::path installed = fs::path(exe).parent_path().parent_path() / "share" / "banger" / "lua";
    if (fs::is_directory(installed / "stdlib", ec)) return installed.string();
  }
  if (fs::is_directory(fs::path(BANGER_SOURCE_LUA_DIR) / "stdlib", ec)) return BANGER_SOURCE_LUA_DIR;
  return BANGER_INSTALL_LUA_DIR;
}

}  // namespace banger::install
