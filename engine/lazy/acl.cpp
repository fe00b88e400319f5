// libacl, loaded when the root helper first lends an isolated VM its RAM
// file (engine/priv/ram_grant.cpp).
#include <sys/acl.h>

#include "engine/lazy/loader.hpp"

namespace {
constexpr const char* kLib = "libacl.so.1";
}  // namespace

BANGER_LAZY(kLib, int, acl_add_perm, (acl_permset_t p, acl_perm_t perm), (p, perm))
BANGER_LAZY(kLib, int, acl_calc_mask, (acl_t * a), (a))
BANGER_LAZY(kLib, int, acl_clear_perms, (acl_permset_t p), (p))
BANGER_LAZY(kLib, int, acl_create_entry, (acl_t * a, acl_entry_t* e), (a, e))
BANGER_LAZY(kLib, acl_t, acl_dup, (acl_t a), (a))
BANGER_LAZY(kLib, int, acl_free, (void* obj), (obj))
BANGER_LAZY(kLib, acl_t, acl_get_fd, (int fd), (fd))
BANGER_LAZY(kLib, int, acl_get_permset, (acl_entry_t e, acl_permset_t* p), (e, p))
BANGER_LAZY(kLib, int, acl_set_fd, (int fd, acl_t a), (fd, a))
BANGER_LAZY(kLib, int, acl_set_permset, (acl_entry_t e, acl_permset_t p), (e, p))
BANGER_LAZY(kLib, int, acl_set_qualifier, (acl_entry_t e, const void* q), (e, q))
BANGER_LAZY(kLib, int, acl_set_tag_type, (acl_entry_t e, acl_tag_t t), (e, t))
