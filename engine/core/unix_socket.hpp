#pragma once
// Small helpers for Unix stream sockets with deadlines (QMP, agent, vsock).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::net_unix {

// Connects to a Unix socket path; retries until `timeout` while the path is
// missing or refuses (the server may still be starting). Returns a CLOEXEC fd.
UniqueFd connect(const std::string& path, std::chrono::milliseconds timeout);

// A Unix stream socket bound to `path` (CLOEXEC, not yet listening): the
// caller sets the umask it must be born under and listens when ready.
UniqueFd bind(const std::string& path);

// Writes all of `data` or throws.
void write_all(int fd, std::string_view data, const std::string& what);

// Writes all of `data` with `fds` attached to its first byte (SCM_RIGHTS):
// how QEMU's monitor receives descriptors (getfd, add-fd).
void write_all_with_fds(int fd, std::string_view data, const std::vector<int>& fds, const std::string& what);

// Reads up to one line (without the newline) before the deadline; throws
// ETIMEDOUT, or EPIPE when the peer closed first. `buffer` keeps bytes read
// past the newline for the next call. More than `max_line` bytes without a
// newline throws EMSGSIZE (a peer must not make us buffer without bound).
std::string read_line(int fd, std::string& buffer, std::chrono::steady_clock::time_point deadline,
                      const std::string& what, std::size_t max_line = SIZE_MAX);

}  // namespace banger::net_unix
