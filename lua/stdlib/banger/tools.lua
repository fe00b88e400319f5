--- banger.tools: the host programs banger runs, where they are and the
-- Debian package of each. One table, the engine's (engine/core/host_tools.cpp),
-- serves every spawn, `banger doctor` and recipes: lookups search PATH and
-- then /usr/local/sbin, /usr/sbin and /sbin (a regular Debian user's PATH
-- has no sbin), and a missing program is an ENOTOOL error naming its package.
local errors = require("banger.errors")
local native = require("banger.native.tools")

local M = {}

--- Absolute path of `name`, or nil and the one-line reason (with the package).
function M.find(name)
  return native.find(name)
end

--- Absolute path of `name`; raises ENOTOOL naming the package to install.
function M.require(name)
  local path, why, code = native.find(name)
  if not path then
    errors.raise(code, why)
  end
  return path
end

--- The Debian package that provides `name`, or nil.
function M.package(name)
  return native.package(name)
end

--- What to run to get `name`: "apt-get install PKG", or nil when Debian has no package.
function M.install_command(name)
  local package = native.package(name)
  return package and ("apt-get install " .. package) or nil
end

--- Every program banger knows: { {name=, package=}, ... } (package nil when Debian has none).
function M.list()
  return native.list()
end

return M
