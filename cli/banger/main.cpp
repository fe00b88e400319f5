// banger: the Lua host. Everything the user sees is decided by the Lua
// stdlib (lua/stdlib/banger/main.lua) and the recipes it dispatches to.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "engine/lua/host.hpp"

int main(int argc, char** argv) {
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
