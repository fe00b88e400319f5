--- banger.priv: the one way banger asks for a privileged host operation
-- (bridges, taps, NAT, ...). The operations and their validation gates are
-- the C++ table in engine/priv/ops.cpp; this module only picks who performs
-- them: this process when banger runs as root ("local-root" mode), the
-- root helper otherwise (docs/privileges.md).
local errors = require("banger.errors")
local native = require("banger.native.priv")
local sys = require("banger.native.sys")
local fs = require("banger.native.fs")

local M = {}

--- How privileged operations would be performed now: "local-root", or nil
-- and the reason none can be.
function M.mode()
  if sys.geteuid() == 0 then
    return "local-root"
  end
  local socket = M.helper_socket()
  -- EACCES: a helper is there but its 0700 directory is another user's;
  -- connecting reports that plainly, which is better than "not installed".
  local st, _, code = fs.lstat(socket)
  if st or code == "EACCES" then
    return "helper", socket
  end
  return nil, "banger is not running as root and no root helper listens on " .. socket
    .. " (install it with `sudo banger system install`)"
end

--- Where the root helper listens (config helper.socket).
function M.helper_socket()
  return require("banger.config").get().helper.socket
end

--- Performs `op` with `params` (and, for launch_vmm, the descriptors
-- `fds`, a list of banger.priv.fd handles); raises a structured error on refusal.
function M.call(op, params, fds)
  local mode, detail = M.mode()
  if mode == "local-root" then
    return errors.check(native.call(op, params or {}, fds))
  elseif mode == "helper" then
    local res, msg, code = native.call_helper(detail, op, params or {}, fds)
    if res == nil and type(msg) == "string" and msg:find("cannot reach the root helper", 1, true) == 1 then
      errors.raise(code or "EFAIL", msg, { hint = "is it installed and running? see `banger system status`" })
    end
    return errors.check(res, msg, code)
  end
  errors.raise("EPERM", op .. " needs root: " .. detail .. " (see docs/privileges.md)")
end

--- The operations and their documented gates: { {name=, gate=}, ... }.
function M.operations()
  return native.operations()
end

return M
