#pragma once
// banger's side of the root helper: one request, one response.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::priv {

// Sends `op` to the helper listening on `socket` and returns its result;
// throws the helper's error (same codes as in-process execution), or
// EHELPER-class errors when the helper cannot be reached.
// `send` rides with the request (launch_vmm); a descriptor the helper
// handed over (open_tap) lands in `fd`.
nlohmann::json call_helper(const std::string& socket, std::string_view op, const nlohmann::json& params,
                           UniqueFd* fd = nullptr, const std::vector<int>& send = {});

}  // namespace banger::priv
