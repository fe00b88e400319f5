--- The `banger` table every recipe and script sees.
--
-- `banger.<name>` is the stdlib module lua/stdlib/banger/<name>.lua when one
-- exists, else the native module banger.native.<name> wrapped so that its
-- failures raise structured errors (see banger.errors). Modules load on
-- first use, so a recipe pays only for what it touches.
local errors = require("banger.errors")

local M = {}

-- require("banger.ext4") gives the same table as banger.ext4: after the
-- stdlib's own files (package.path), a native module of that name, wrapped.
package.searchers[#package.searchers + 1] = function(modname)
  local name = modname:match("^banger%.([%a_][%w_]*)$")
  if not name or not package.preload["banger.native." .. name] then
    return "\n\tno native module 'banger.native." .. (name or modname) .. "'"
  end
  return function()
    return errors.wrap(require("banger.native." .. name))
  end, "banger.native." .. name
end

setmetatable(M, {
  __index = function(t, name)
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      return nil
    end
    if not (package.searchpath("banger." .. name, package.path) or package.preload["banger.native." .. name]) then
      return nil
    end
    local mod = require("banger." .. name)
    rawset(t, name, mod)
    return mod
  end,
})

return M
