#pragma once
// Process-wide cancellation (Ctrl-C). The signal handler only sets a flag;
// long-running natives poll it at safe points and throw ECANCELED, so their
// RAII cleanup runs and the Lua recipe's <close> handlers run after them.
#include <atomic>

namespace banger::cancel {

void request() noexcept;  // async-signal-safe
bool requested() noexcept;
void reset() noexcept;
// Throws banger::Error("ECANCELED", "interrupted") when cancellation was requested.
void check();

}  // namespace banger::cancel
