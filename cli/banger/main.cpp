// banger: the Lua host. Everything the user sees is decided by the Lua
// stdlib (lua/stdlib/banger/main.lua) and the recipes it dispatches to.
#include <clocale>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "engine/lua/host.hpp"

int main(int argc, char** argv) {
  // Archive and file names are UTF-8 (pax headers, OCI layers): libarchive
  // converts them to the locale's charset, which must therefore be UTF-8.
  // Only the character type is set; messages and formats stay in C.
  if (!std::setlocale(LC_CTYPE, "C.UTF-8")) std::setlocale(LC_CTYPE, "");
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    banger::lua::Host host;
    host.install_interrupt_handler();
    return host.run_main(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "banger: %s\n", e.what());
    return 70;
  }
}
