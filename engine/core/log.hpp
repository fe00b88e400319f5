#pragma once
// Structured logging: one JSON object per line in a per-user log file
// ($XDG_STATE_HOME/banger/banger.log), appended with a single write so lines
// from concurrent banger processes never interleave. --debug mirrors
// records to stderr.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace banger::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

Level parse_level(std::string_view s);  // throws EINVAL for unknown names
std::string_view level_name(Level l);

// Opens (creating 0600, never through a symlink) the log file. Until it is
// opened, records only go to stderr when mirroring is on.
void open(const std::string& path);
void set_file_level(Level l);
void set_stderr_level(std::optional<Level> l);  // nullopt: no mirroring

void write(Level l, std::string_view component, std::string_view message,
           const nlohmann::json& fields = nlohmann::json::object());

}  // namespace banger::log
