// libisal (igzip), loaded when banger first inflates gzip data (image
// layers, kernel packages) or deflates it (a layer `image push` writes).
#include <isa-l/igzip_lib.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libisal.so.2";
}  // namespace

BANGER_LAZY(kLib, int, isal_inflate, (struct inflate_state * s), (s))
BANGER_LAZY(kLib, void, isal_inflate_init, (struct inflate_state * s), (s))
BANGER_LAZY(kLib, void, isal_inflate_reset, (struct inflate_state * s), (s))
BANGER_LAZY(kLib, int, isal_deflate, (struct isal_zstream * s), (s))
BANGER_LAZY(kLib, void, isal_deflate_init, (struct isal_zstream * s), (s))
