#pragma once
// The one bridge from a native back into Lua: stage hooks, progress
// callbacks, DNS lookups, streamed output. Every native that calls a Lua
// function does it through Callback, so they all behave alike:
//
//  * The function runs under lua_pcall; its error, whatever it is (a
//    structured banger.error table, a plain message from a bug), travels
//    up as lua::CallbackError, so the native's C++ frames unwind (killing a
//    half-started VM, removing a temporary file), and protect<> then raises
//    the very same value in the native's caller. Nothing is renamed
//    "canceled", stringified or dropped.
//  * Ctrl-C: with Interrupt::raise (the default) the host's interrupt hook
//    fires inside the callback after a grace of kCallbackGrace instructions
//    (enough to finish a progress line), so a callback stuck in a loop
//    still ends with exit 130. With Interrupt::defer the hook waits
//    until the native returns: for natives that finish a protocol after the
//    signal and keep feeding the callback (an exec passes the signal to
//    the guest command and streams the rest of its output). A callback that
//    swallows the interrupt (a pcall of its own) does not lose it: the hook
//    is re-armed when it returns.
//
// Call only from the native's own thread, and never from inside a C
// library's callback frames (libcurl, libarchive): an exception cannot
// cross them. Catch there, stop the library, and rethrow after it returns
// (engine/core/download.cpp).
#include <lua.hpp>

#include <stdexcept>
#include <string>

namespace banger::lua {

// A Lua callback raised. The value it raised waits in the registry until
// protect<> re-raises it; what() and code() describe it for C++ code that
// logs or wraps the failure instead.
class CallbackError : public std::runtime_error {
 public:
  CallbackError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const noexcept { return code_; }

 private:
  std::string code_;
};

enum class Interrupt { raise, defer };

class Callback {
 public:
  // The function at stack index idx of the running native; anything that is
  // not a function makes an empty Callback (the caller type-checked it).
  Callback(lua_State* L, int idx, Interrupt mode = Interrupt::raise);

  explicit operator bool() const noexcept { return idx_ != 0; }

  // Calls it with the arguments `push` pushes (returning their count, at
  // most kMaxArgs); leaves `nresults` results on the stack for the caller
  // to read and pop. Throws CallbackError when the function raises.
  static constexpr int kMaxArgs = 8;
  template <class Push>
  void call(int nresults, Push&& push) const {
    reserve(kMaxArgs + 1 + nresults);
    lua_pushvalue(L_, idx_);
    int nargs = push(L_);
    invoke(nargs, nresults);
  }
  // The common case: no results.
  template <class Push>
  void operator()(Push&& push) const {
    call(0, std::forward<Push>(push));
  }

 private:
  void reserve(int n) const;
  void invoke(int nargs, int nresults) const;

  lua_State* L_;
  int idx_;
  Interrupt mode_;
};

// For protect<>: the slot that carries a callback's error value out of the
// native. ensure_error_slot runs before the native (it may allocate, so it
// may raise, while no C++ object is alive yet); push_callback_error pushes
// the value and empties the slot without allocating.
void ensure_error_slot(lua_State* L);
void push_callback_error(lua_State* L);
// Pops the value on top of the stack into the slot (never allocates: the
// slot exists once ensure_error_slot ran).
void store_callback_error(lua_State* L);

}  // namespace banger::lua
