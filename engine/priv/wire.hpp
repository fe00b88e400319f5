#pragma once
// The helper's wire format: one JSON object per line each way.
//   request:  {"op": "<operation>", "params": {...}}
//   response: {"ok": <result>}  or  {"error": {"code": "...", "message": "..."}}
// A line is at most kMaxLine bytes; the helper drops a connection that
// sends more, before parsing anything.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace banger::priv {

inline constexpr std::size_t kMaxLine = 64 * 1024;

std::string encode_request(std::string_view op, const nlohmann::json& params);
std::string encode_ok(const nlohmann::json& result);
std::string encode_error(std::string_view code, std::string_view message);

// Returns the result of a response line, or throws the banger::Error it carries.
nlohmann::json decode_response(const std::string& line);

}  // namespace banger::priv
