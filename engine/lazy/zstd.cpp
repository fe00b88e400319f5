// libzstd, loaded when banger first compresses or decompresses a zstd
// stream (kernel bundles).
#include <zstd.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libzstd.so.1";
}  // namespace

BANGER_LAZY(kLib, ZSTD_CCtx*, ZSTD_createCCtx, (void), ())
BANGER_LAZY(kLib, size_t, ZSTD_freeCCtx, (ZSTD_CCtx * c), (c))
BANGER_LAZY(kLib, size_t, ZSTD_CCtx_setParameter, (ZSTD_CCtx * c, ZSTD_cParameter p, int v), (c, p, v))
BANGER_LAZY(kLib, size_t, ZSTD_compressStream2,
            (ZSTD_CCtx * c, ZSTD_outBuffer* out, ZSTD_inBuffer* in, ZSTD_EndDirective end), (c, out, in, end))
BANGER_LAZY(kLib, size_t, ZSTD_CStreamOutSize, (void), ())
BANGER_LAZY(kLib, ZSTD_DCtx*, ZSTD_createDCtx, (void), ())
BANGER_LAZY(kLib, size_t, ZSTD_freeDCtx, (ZSTD_DCtx * d), (d))
BANGER_LAZY(kLib, size_t, ZSTD_DCtx_setParameter, (ZSTD_DCtx * d, ZSTD_dParameter p, int v), (d, p, v))
BANGER_LAZY(kLib, size_t, ZSTD_decompressStream, (ZSTD_DStream * d, ZSTD_outBuffer* out, ZSTD_inBuffer* in),
            (d, out, in))
BANGER_LAZY(kLib, size_t, ZSTD_DStreamOutSize, (void), ())
BANGER_LAZY(kLib, unsigned, ZSTD_isError, (size_t code), (code))
BANGER_LAZY(kLib, const char*, ZSTD_getErrorName, (size_t code), (code))
