#pragma once
// The host programs banger runs, where to find them and which Debian
// package brings each. Debian's default PATH for a regular user has no sbin
// directory, yet resize2fs, ip and iptables live there and work for anyone,
// so the lookup goes on through the sbin directories after PATH. One table
// serves every spawn (process::spawn), `banger doctor` and the recipes
// (banger.tools), so a missing program always names the package to install.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/core/error.hpp"

namespace banger::host_tools {

// Searched after $PATH (or, without PATH, after /usr/local/bin:/usr/bin:/bin).
inline constexpr const char* kSbinDirs[] = {"/usr/local/sbin", "/usr/sbin", "/sbin"};

// Absolute path of the executable `name` ("" when there is none). A name
// with a '/' is checked as it is.
std::string find(const std::string& name);

// The Debian package providing `name` (its basename when it is a path), ""
// for a program banger does not know. Firecracker has none: it maps to "".
std::string package_of(std::string_view name);

// Every program banger knows, with its package, in table order.
const std::vector<std::pair<std::string_view, std::string_view>>& table();

// The one-line error for a program that cannot be found: code ENOTOOL,
// naming the directories searched and the package to install.
Error not_found(const std::string& name);

}  // namespace banger::host_tools
