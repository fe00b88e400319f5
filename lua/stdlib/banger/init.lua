--- The `banger` table every recipe and script sees.
--
-- `banger.<name>` is the stdlib module lua/stdlib/banger/<name>.lua when one
-- exists, else the native module banger.native.<name> wrapped so that its
-- failures raise structured errors (see banger.errors). Modules load on
-- first use, so a recipe pays only for what it touches.
local errors = require("banger.errors")

local M = {}

setmetatable(M, {
  __index = function(t, name)
    if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
      return nil
    end
    local mod
    if package.searchpath("banger." .. name, package.path) then
      mod = require("banger." .. name)
    elseif package.preload["banger.native." .. name] then
      mod = errors.wrap(require("banger.native." .. name))
    else
      return nil
    end
    rawset(t, name, mod)
    return mod
  end,
})

return M
