--- banger.priv: the one way banger asks for a privileged host operation
-- (bridges, taps, NAT, ...). The operations and their validation gates are
-- the C++ table in engine/priv/ops.cpp; this module only picks who performs
-- them: this process when banger runs as root ("local-root" mode), the
-- root helper otherwise (docs/privileges.md).
local errors = require("banger.errors")
local native = require("banger.native.priv")
local sys = require("banger.native.sys")

local M = {}

--- How privileged operations would be performed now: "local-root", or nil
-- and the reason none can be.
function M.mode()
  if sys.geteuid() == 0 then
    return "local-root"
  end
  return nil, "banger is not running as root and the root helper is not available"
end

--- Performs `op` with `params`; raises a structured error on refusal.
function M.call(op, params)
  local mode, why = M.mode()
  if not mode then
    errors.raise("EPERM", op .. " needs root: " .. why .. " (see docs/privileges.md)")
  end
  return errors.check(native.call(op, params or {}))
end

--- The operations and their documented gates: { {name=, gate=}, ... }.
function M.operations()
  return native.operations()
end

return M
