#pragma once
// banger's side of the root helper: one request, one response.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace banger::priv {

// Sends `op` to the helper listening on `socket` and returns its result;
// throws the helper's error (same codes as in-process execution), or
// EHELPER-class errors when the helper cannot be reached.
nlohmann::json call_helper(const std::string& socket, std::string_view op, const nlohmann::json& params);

}  // namespace banger::priv
