#include "engine/core/cancel.hpp"

#include "engine/core/error.hpp"

namespace banger::cancel {
namespace {
std::atomic<bool> flag{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the flag is set from a signal handler");
}  // namespace

void request() noexcept { flag.store(true, std::memory_order_relaxed); }
bool requested() noexcept { return flag.load(std::memory_order_relaxed); }
void reset() noexcept { flag.store(false, std::memory_order_relaxed); }
void check() {
  if (requested()) throw Error("ECANCELED", "interrupted");
}

}  // namespace banger::cancel
