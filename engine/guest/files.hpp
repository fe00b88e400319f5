#pragma once
// The agent's `list` and `remove` requests (docs/agent-protocol.md,
// protocol 1.3): what a directory listing entry is on the wire, and the
// limits both sides share.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace banger::guest {

// At most this many entries in one answer, and their JSON well under one
// frame (kMaxPayload): a guest directory with millions of files cannot make
// the agent build an answer it cannot send.
inline constexpr size_t kMaxListEntries = 10000;
inline constexpr size_t kMaxListBytes = 900 * 1024;
// Deeper trees than this are refused by a recursive remove (ELOOP) rather
// than exhausting the agent's descriptors or stack.
inline constexpr int kMaxRemoveDepth = 128;

struct FileEntry {
  std::string name;
  std::string type;  // "file" | "dir" | "link" | "other" (lstat: a link is never followed)
  std::uint64_t size = 0;
  unsigned mode = 0;  // permission bits (07777)
  std::int64_t mtime = 0;  // seconds since the epoch
};

struct ListResult {
  std::vector<FileEntry> entries;
  bool truncated = false;
  bool dir = false;  // the path was a directory (else `entries` is the path's own entry)
};

nlohmann::json to_json(const ListResult& r);
ListResult parse_list(const nlohmann::json& j);  // throws EPROTO on a malformed answer

}  // namespace banger::guest
