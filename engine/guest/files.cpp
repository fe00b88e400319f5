#include "engine/guest/files.hpp"

#include "engine/core/error.hpp"

namespace banger::guest {

nlohmann::json to_json(const ListResult& r) {
  nlohmann::json entries = nlohmann::json::array();
  for (const FileEntry& e : r.entries) {
    entries.push_back({{"name", e.name}, {"type", e.type}, {"size", e.size}, {"mode", e.mode}, {"mtime", e.mtime}});
  }
  return {{"entries", std::move(entries)}, {"truncated", r.truncated}, {"dir", r.dir}};
}

ListResult parse_list(const nlohmann::json& j) {
  ListResult r;
  auto it = j.find("entries");
  if (it == j.end() || !it->is_array()) throw Error("EPROTO", "agent protocol: list answer without entries");
  for (const auto& e : *it) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      throw Error("EPROTO", "agent protocol: malformed list entry");
    r.entries.push_back({e["name"].get<std::string>(), e.value("type", std::string("other")),
                         e.value("size", std::uint64_t{0}), e.value("mode", 0u), e.value("mtime", std::int64_t{0})});
  }
  r.truncated = j.value("truncated", false);
  r.dir = j.value("dir", false);
  return r;
}

}  // namespace banger::guest
