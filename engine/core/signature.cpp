#include "engine/core/signature.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "engine/core/error.hpp"

namespace banger {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Key = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Ctx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

constexpr size_t kSignatureBytes = 64;

}  // namespace

bool verify_ed25519(std::string_view public_key_pem, std::string_view message, std::string_view signature) {
  Bio bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())), BIO_free);
  if (!bio) throw Error("ENOMEM", "BIO_new_mem_buf");
  Key key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  // OpenSSL queues an error for a failed parse; this thread's next call
  // must not find it.
  ERR_clear_error();
  if (!key) throw Error("EKEY", "the release public key is not a PEM public key (SubjectPublicKeyInfo)");
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_ED25519) {
    throw Error("EKEY", "the release public key is not an Ed25519 key");
  }
  if (signature.size() != kSignatureBytes) return false;
  Ctx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) throw Error("ENOMEM", "EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    ERR_clear_error();
    throw Error("EKEY", "cannot verify with the release public key");
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  return ok == 1;
}

}  // namespace banger
