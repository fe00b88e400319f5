#pragma once
// The helper's wire format: one JSON object per line each way.
//   request:  {"op": "<operation>", "params": {...}}
//   response: {"ok": <result>}  or  {"error": {"code": "...", "message": "..."}}
// A line is at most kMaxLine bytes; the helper drops a connection that
// sends more, before parsing anything.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "engine/core/unique_fd.hpp"

namespace banger::priv {

inline constexpr std::size_t kMaxLine = 64 * 1024;

std::string encode_request(std::string_view op, const nlohmann::json& params);
std::string encode_ok(const nlohmann::json& result);
std::string encode_error(std::string_view code, std::string_view message);

// Returns the result of a response line, or throws the banger::Error it carries.
nlohmann::json decode_response(const std::string& line);

// Sends a response line, with `fd` attached as SCM_RIGHTS when it is >= 0.
void send_line(int sock, std::string_view line, int fd);

// Reads one response line before `deadline`, taking the descriptor that
// came with it (if any) into `fd`. Descriptors beyond one are closed.
std::string recv_line(int sock, UniqueFd& fd, std::chrono::steady_clock::time_point deadline);

}  // namespace banger::priv
