// libnftables, loaded when banger first changes its NAT rules.
#include <nftables/libnftables.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libnftables.so.1";
}

BANGER_LAZY(kLib, int, nft_ctx_buffer_error, (struct nft_ctx * ctx), (ctx))
BANGER_LAZY(kLib, int, nft_ctx_buffer_output, (struct nft_ctx * ctx), (ctx))
BANGER_LAZY(kLib, void, nft_ctx_free, (struct nft_ctx * ctx), (ctx))
BANGER_LAZY(kLib, const char*, nft_ctx_get_error_buffer, (struct nft_ctx * ctx), (ctx))
BANGER_LAZY(kLib, const char*, nft_ctx_get_output_buffer, (struct nft_ctx * ctx), (ctx))
BANGER_LAZY(kLib, struct nft_ctx*, nft_ctx_new, (uint32_t flags), (flags))
BANGER_LAZY(kLib, void, nft_ctx_output_set_flags, (struct nft_ctx * ctx, unsigned int flags), (ctx, flags))
BANGER_LAZY(kLib, int, nft_run_cmd_from_buffer, (struct nft_ctx * ctx, const char* buf), (ctx, buf))
