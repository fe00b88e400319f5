--- banger.log: the structured log ($XDG_STATE_HOME/banger/banger.log).
local native = require("banger.native.log")

local M = {}

for _, level in ipairs({ "debug", "info", "warn", "error" }) do
  M[level] = function(component, message, fields)
    native.write(level, component, message, fields)
  end
end

M.open = native.open
M.set_level = native.set_level
M.set_stderr = native.set_stderr

return M
