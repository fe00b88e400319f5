// libcrypto (OpenSSL), loaded when banger first hashes or base64-codes
// something (downloads, trust manifests, registry auth, host keys).
#include <openssl/evp.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libcrypto.so.3";
}  // namespace

BANGER_LAZY(kLib, int, EVP_DecodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
BANGER_LAZY(kLib, int, EVP_EncodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
BANGER_LAZY(kLib, int, EVP_Digest,
            (const void* data, size_t count, unsigned char* md, unsigned int* size, const EVP_MD* type, ENGINE* impl),
            (data, count, md, size, type, impl))
BANGER_LAZY(kLib, int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl), (ctx, type, impl))
BANGER_LAZY(kLib, int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt), (ctx, d, cnt))
BANGER_LAZY(kLib, int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s), (ctx, md, s))
BANGER_LAZY(kLib, EVP_MD_CTX*, EVP_MD_CTX_new, (void), ())
BANGER_LAZY(kLib, void, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
BANGER_LAZY(kLib, const EVP_MD*, EVP_sha256, (void), ())
