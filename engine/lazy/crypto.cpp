// libcrypto (OpenSSL), loaded when banger first hashes or base64-codes
// something (downloads, trust manifests, registry auth, host keys) or checks
// a release manifest's signature.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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
// Release manifests: an Ed25519 key from PEM, one-shot verification.
BANGER_LAZY(kLib, BIO*, BIO_new_mem_buf, (const void* buf, int len), (buf, len))
BANGER_LAZY(kLib, int, BIO_free, (BIO * a), (a))
BANGER_LAZY(kLib, EVP_PKEY*, PEM_read_bio_PUBKEY, (BIO * bp, EVP_PKEY** x, pem_password_cb* cb, void* u),
            (bp, x, cb, u))
BANGER_LAZY(kLib, void, EVP_PKEY_free, (EVP_PKEY * key), (key))
BANGER_LAZY(kLib, int, EVP_PKEY_get_base_id, (const EVP_PKEY* key), (key))
BANGER_LAZY(kLib, int, EVP_DigestVerifyInit,
            (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type, ENGINE* e, EVP_PKEY* key),
            (ctx, pctx, type, e, key))
BANGER_LAZY(kLib, int, EVP_DigestVerify,
            (EVP_MD_CTX * ctx, const unsigned char* sig, size_t siglen, const unsigned char* tbs, size_t tbslen),
            (ctx, sig, siglen, tbs, tbslen))
BANGER_LAZY(kLib, void, ERR_clear_error, (void), ())
