#pragma once
// The agent's `list` and `remove` requests (docs/agent-protocol.md): never
// following a symbolic link where that would reach outside what was asked.
#include <string>

#include "engine/guest/files.hpp"

namespace banger::agent {

// A directory's entries (lstat'd: a link is reported as a link), or the one
// entry of `path` itself when it is not a directory (a link to a directory
// included). Throws Error with the errno name.
guest::ListResult list_path(const std::string& path);

// Removes `path`: a link removes the link, a file the file, a directory
// only when empty unless `recursive`. A recursive remove opens every
// directory with O_NOFOLLOW relative to its parent and unlinks with
// unlinkat, so it never crosses a symbolic link. "/" is refused (EPERM).
void remove_path(const std::string& path, bool recursive);

}  // namespace banger::agent
