#pragma once
// The embedded Lua 5.4 host: one lua_State with the standard libraries, the
// native modules preloaded as "banger.native.<name>", and package.path
// limited to banger's bundled stdlib so a recipe cannot shadow it by accident.
#include <lua.hpp>

#include <string>
#include <vector>

namespace banger::lua {

// Arms the interrupt hook on L again when a signal asked for cancellation
// and the host installed its handler: a Lua callback that caught the
// interrupt (engine/lua/callback.hpp) does not make it go away.
void rearm_interrupt(lua_State* L) noexcept;

// Pushes the error an interrupt raises: a banger.error table with code
// ECANCELED, message "interrupted" (SIGINT, or no signal) or "terminated"
// (SIGTERM) and exit 128 + the signal. The one place that mapping is made:
// the interrupt hook raises it, sys.interrupt_error() gives it to banger.errors.
void push_interrupt_error(lua_State* L);

class Host {
 public:
  Host();
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  lua_State* state() const { return L_; }

  // Runs require("banger.main").run(args) and returns the process exit code.
  // banger.main prints errors itself; this only reports a host that cannot
  // load its stdlib at all.
  int run_main(const std::vector<std::string>& args);

  // Ctrl-C / SIGTERM: set the cancel flag and raise "interrupted" in the Lua
  // code at its next instruction so <close> handlers run. A third signal
  // while cleanups are still running exits at once.
  void install_interrupt_handler();

 private:
  lua_State* L_;
};

}  // namespace banger::lua
