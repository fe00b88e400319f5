#pragma once
// The privileged operations banger may ask for, each behind its validation
// gate. This table is the whole root surface: the root helper serves exactly
// these, and banger running as root calls the same entry point in-process,
// so both modes pass through the same checks. Requests are typed JSON
// objects; unknown operations and unknown or ill-typed fields are refused
// before anything touches the host.
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "engine/core/unique_fd.hpp"

namespace banger::priv {

// Who asked: the helper fills this from SO_PEERCRED; in-process it is us.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

// What an operation gives back: a JSON value and, for operations that hand
// over an open object (a tap queue), its descriptor.
struct Result {
  nlohmann::json value = nlohmann::json::object();
  UniqueFd fd;
};

struct Operation {
  std::string_view name;
  std::string_view gate;  // the validation rule, as documented in docs/privileges.md
  Result (*run)(const nlohmann::json& params, const Caller& caller);
};

const std::vector<Operation>& operations();

// Validates and performs `op`. Throws banger::Error: EINVAL for a request
// that fails its gate (nothing was changed), ENOSYS for an unknown
// operation, else whatever the operation itself raised.
Result execute(std::string_view op, const nlohmann::json& params, const Caller& caller);

}  // namespace banger::priv
