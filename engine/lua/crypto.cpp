// banger.native.crypto: signature checks (engine/core/signature.hpp).
//   crypto.verify_ed25519(public_key_pem, message, signature) -> true
//     | nil, msg, "EBADSIG" (not that key's signature of those bytes)
//     | nil, msg, "EKEY" (the PEM is no Ed25519 public key)
//   crypto.release_pubkey: the PEM built in (cmake BANGER_RELEASE_PUBKEY)
//   crypto.base64_encode(bytes) -> text; crypto.base64_decode(text) -> bytes
//     | nil, msg, "EINVAL"
#include "engine/core/base64.hpp"
#include "engine/core/build_info.hpp"
#include "engine/core/error.hpp"
#include "engine/core/signature.hpp"
#include "engine/lua/binding.hpp"

namespace banger::lua {
namespace {

int l_verify_ed25519(lua_State* L) {
  auto pem = check_string(L, 1);
  auto message = check_string(L, 2);
  auto signature = check_string(L, 3);
  if (!verify_ed25519(pem, message, signature)) {
    throw Error("EBADSIG", "the signature does not match the release public key");
  }
  lua_pushboolean(L, 1);
  return 1;
}

int l_base64_encode(lua_State* L) {
  auto out = base64_encode(check_string(L, 1));
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int l_base64_decode(lua_State* L) {
  auto out = base64_decode(check_string(L, 1));
  lua_pushlstring(L, out.data(), out.size());
  return 1;
}

int open_crypto(lua_State* L) {
  static const luaL_Reg fns[] = {{"verify_ed25519", protect<l_verify_ed25519>},
                                 {"base64_encode", protect<l_base64_encode>},
                                 {"base64_decode", protect<l_base64_decode>},
                                 {nullptr, nullptr}};
  luaL_newlib(L, fns);
  set_field(L, "release_pubkey", build::release_pubkey);
  return 1;
}

}  // namespace
BANGER_LUA_MODULE(crypto, open_crypto);
}  // namespace banger::lua
