#pragma once
// banger's directories, following the XDG base directory spec:
//   config  $XDG_CONFIG_HOME/banger   (~/.config/banger)
//   state   $XDG_STATE_HOME/banger    (~/.local/state/banger): DB, VMs, kernels, images, ssh/
//   cache   $XDG_CACHE_HOME/banger    (~/.cache/banger): OCI blob cache
//   runtime $XDG_RUNTIME_DIR/banger   (sockets), else /tmp/banger-runtime-<uid>
#include <string>

namespace banger::paths {

struct Layout {
  std::string config;
  std::string state;
  std::string cache;
  std::string runtime;
  bool runtime_is_fallback = false;  // true when XDG_RUNTIME_DIR was unset
};

// Computes the layout from the environment without touching the disk.
Layout resolve();

// Creates every directory of the layout: config/state/cache 0700 when new,
// runtime always 0700 (see ensure_private_dir).
void ensure(const Layout& layout);

// Creates `path` (and missing parents with 0700) as a directory private to
// the current uid: mode 0700, owned by us, not a symlink. An existing
// directory with looser bits is tightened; one owned by another uid or
// reached through a symlink is refused with EPERM/ELOOP, because sockets
// placed there could be reached or swapped by someone else.
void ensure_private_dir(const std::string& path);

}  // namespace banger::paths
