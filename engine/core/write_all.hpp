#pragma once
// Whole writes to a file or pipe descriptor: retried on EINTR and short
// writes; a non-blocking descriptor that is full is waited on. Sockets use
// net_unix::write_all (send with MSG_NOSIGNAL) instead.
#include <sys/types.h>

#include <string>
#include <string_view>

namespace banger {

// Throws Error (errno code) naming `what` (a path, "pipe") on failure.
void write_all(int fd, std::string_view data, const std::string& what);

// The same at offset `off`, leaving the file offset alone.
void pwrite_all(int fd, std::string_view data, off_t off, const std::string& what);

}  // namespace banger
