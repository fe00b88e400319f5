#pragma once
// The privileged operations banger may ask for, each behind its validation
// gate. This table is the whole root surface: the root helper serves exactly
// these, and banger running as root calls the same entry point in-process,
// so both modes pass through the same checks. Requests are typed JSON
// objects; unknown operations and unknown or ill-typed fields are refused
// before anything touches the host.
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <initializer_list>
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

// A request's descriptors (SCM_RIGHTS from the owner, or passed in-process):
// only operations that declare `takes_fds` accept any.
using Fds = std::vector<UniqueFd>;

struct Operation {
  std::string_view name;
  std::string_view gate;  // the validation rule, as documented in docs/privileges.md
  Result (*run)(const nlohmann::json& params, const Caller& caller, Fds& fds);
  bool takes_fds = false;
};

const std::vector<Operation>& operations();

// Validates and performs `op`. Throws banger::Error: EINVAL for a request
// that fails its gate (nothing was changed), ENOSYS for an unknown
// operation, else whatever the operation itself raised.
Result execute(std::string_view op, const nlohmann::json& params, const Caller& caller, Fds fds = {});

// Request-shape checks shared by the operation files: exactly these fields,
// typed accessors that refuse (EINVAL) rather than convert.
void expect_fields(const nlohmann::json& p, std::initializer_list<std::string_view> names);
std::string str(const nlohmann::json& p, const char* key);
long integer(const nlohmann::json& p, const char* key);

// The hypervisor operations (engine/priv/vmm_ops.cpp).
Result launch_vmm(const nlohmann::json& params, const Caller& caller, Fds& fds);
Result signal_vmm(const nlohmann::json& params, const Caller& caller, Fds& fds);

// The egress allow-list operations (engine/priv/egress_ops.cpp).
Result ensure_egress(const nlohmann::json& params, const Caller& caller, Fds& fds);
Result egress_allow(const nlohmann::json& params, const Caller& caller, Fds& fds);

}  // namespace banger::priv
