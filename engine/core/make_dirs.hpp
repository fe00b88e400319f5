#pragma once
// mkdir -p. String operations, not std::filesystem, so the static guest
// agent can link it without libstdc++'s locale machinery.
#include <sys/types.h>

#include <string>

namespace banger {

// Creates every missing directory on `path` with `mode` (less the umask);
// directories that exist are left as they are. With refuse_symlink, the
// last component must be a real directory, not a symlink to one (a planted
// link would redirect what is written below it): EUNSAFE otherwise.
void make_dirs(const std::string& path, mode_t mode, bool refuse_symlink = false);

}  // namespace banger
