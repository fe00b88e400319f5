#pragma once
// Host network links through rtnetlink (libnl-route): the bridge guests
// share and one tap per VM. These functions do what they are told; the
// validation gates that decide what they may be told live in engine/priv.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include "engine/core/unique_fd.hpp"

namespace banger::net {

struct LinkInfo {
  std::string name;
  std::string kind;    // rtnetlink link kind: "bridge", "tun", "veth", "" for plain devices
  std::string master;  // name of the bridge it is a port of, or ""
  bool up = false;
  std::vector<std::string> ipv4;  // "a.b.c.d/prefix"
};

// nullopt when no link has that name.
std::optional<LinkInfo> link_info(std::string_view name);

// Creates the bridge when missing, adds `address/prefix` when the bridge
// lacks it, and sets it up. A link of that name that is not a bridge is an
// error (EEXIST), never reused.
void ensure_bridge(std::string_view name, std::string_view address, int prefix);

// Creates a persistent tap owned by `owner` (so an unprivileged hypervisor
// can attach to it), makes it a port of `bridge`, sets its alias (ifalias)
// to `alias` and sets it up. An existing tap of that name is reused if it is
// already a port of that bridge. The alias says which banger home made the
// tap: one uid may have several, and each one's orphan census must leave the
// others' taps alone.
void create_tap(std::string_view name, std::string_view bridge, uid_t owner, std::string_view alias);

// create_tap, then opens a queue of it and returns the descriptor: what a
// hypervisor attaches to when it may not open /dev/net/tun itself (it is
// 0600 on many hosts). The descriptor travels to it over SCM_RIGHTS.
UniqueFd open_tap(std::string_view name, std::string_view bridge, uid_t owner, std::string_view alias);

// Deletes a link of kind `kind` ("tun" or "bridge"); false when it did not
// exist. A link of another kind is refused (EPERM): the name alone is not
// proof that banger created it.
bool delete_link(std::string_view name, std::string_view kind);

}  // namespace banger::net
