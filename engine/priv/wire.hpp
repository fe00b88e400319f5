#pragma once
// The helper's wire format: one JSON object per line each way.
//   request:  {"op": "<operation>", "params": {...}}
//   response: {"ok": <result>}  or  {"error": {"code": "...", "message": "..."}}
// A line is at most kMaxLine bytes; the helper drops a connection that
// sends more, before parsing anything. Descriptors travel as SCM_RIGHTS with
// a line's first byte, at most kMaxFds per line: the helper hands over tap
// queues, the owner hands the helper what a hypervisor it launches may use.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::priv {

inline constexpr std::size_t kMaxLine = 64 * 1024;
inline constexpr std::size_t kMaxFds = 32;  // a restored VM: 8 of its own plus its disks' backing chains

std::string encode_request(std::string_view op, const nlohmann::json& params);
std::string encode_ok(const nlohmann::json& result);
std::string encode_error(std::string_view code, std::string_view message);

// Returns the result of a response line, or throws the banger::Error it carries.
nlohmann::json decode_response(const std::string& line);

// Sends a line with `fds` attached.
void send_line(int sock, std::string_view line, const std::vector<int>& fds = {});

// Reads one line before `deadline`, appending the descriptors that came with
// it to `fds`. `buffer` keeps bytes past the line for the next call. More
// than kMaxFds descriptors, or a line over kMaxLine, is EMSGSIZE (the extra
// descriptors are closed); EPIPE when the peer closed first.
std::string recv_line(int sock, std::string& buffer, std::vector<UniqueFd>& fds,
                      std::chrono::steady_clock::time_point deadline);

}  // namespace banger::priv
