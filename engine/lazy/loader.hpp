#pragma once
// Libraries loaded on first use. libcurl (with the 30 libraries it needs:
// TLS, Kerberos, LDAP, HTTP/2, ...), libarchive, libssh2 and libnftables
// were most of every banger process's start-up, and most commands never call
// them (docs/performance.md); libcrypto, libisal and libacl followed. banger does not link them: the functions it
// calls are defined in this folder, each looking the real one up the first
// time it runs (dlopen once per library, dlsym once per function).
#include <cstdarg>

namespace banger::lazy {

// The address of `name` in the library `soname`, loading it the first time.
// A library or function that cannot be found ends the process with a message
// naming it (callers are C APIs that have no way to report it).
void* symbol(const char* soname, const char* name);

}  // namespace banger::lazy

// Defines the C function `name` as a forwarder to the library's own.
#define BANGER_LAZY(soname, ret, name, params, args)                                                    \
  extern "C" ret name params {                                                                          \
    static const auto real = reinterpret_cast<ret(*) params>(::banger::lazy::symbol(soname, #name)); \
    return real args;                                                                                   \
  }
