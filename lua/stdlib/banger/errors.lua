--- banger.errors: the one error convention of the Lua side.
--
-- Natives (require "banger.native.*") return `nil, message, code` on
-- operational failure. Everything a recipe calls through the `banger` table
-- raises a structured error instead: a table with `code`, `message` and
-- optionally `exit` (the process exit code) and `hint`. The CLI prints an
-- uncaught one as "banger: <message>" (traceback only with --debug).
local M = {}

local Error = {}
Error.__index = Error
Error.__name = "banger.error"
function Error.__tostring(e)
  return e.message
end

-- The C host raises "interrupted" with this metatable too.
debug.getregistry()["banger.error"] = Error

-- A native's argument error names the line that called it; the wrappers
-- below are skipped on the way (engine/lua/binding.cpp, push_caller_where).
do
  local registry = debug.getregistry()
  registry["banger.transparent_sources"] = registry["banger.transparent_sources"] or {}
  registry["banger.transparent_sources"][debug.getinfo(1, "S").source] = true
end

---@param code string  e.g. "ENOENT", "EINVAL", "EUSAGE"
---@param message string
---@param fields table|nil  extra fields (exit, hint, ...)
function M.new(code, message, fields)
  local e = setmetatable({ code = code, message = message }, Error)
  for k, v in pairs(fields or {}) do
    e[k] = v
  end
  if code == "ECANCELED" and e.exit == nil then
    e.exit = M.interrupt_status()
  end
  return e
end

--- The exit status an interruption calls for: 128 + the signal (130 for
-- SIGINT, 143 for SIGTERM); 130 when no signal was received. The mapping
-- is the host's, the same the Ctrl-C hook raises (sys.interrupt_error).
function M.interrupt_status()
  return require("banger.native.sys").interrupt_error().exit
end

--- Raises the interruption (code ECANCELED) with the signal's exit status:
-- the very error the host's Ctrl-C hook raises.
function M.interrupted()
  error(require("banger.native.sys").interrupt_error(), 2)
end

--- Raises the interruption when SIGINT or SIGTERM arrived. For loops that
-- call natives under pcall: the host's interrupt is an error that a pcall
-- catches, and the natives then keep answering ECANCELED.
function M.check_interrupted()
  if require("banger.native.sys").interrupted() then
    M.interrupted()
  end
end

function M.is(v)
  return getmetatable(v) == Error
end

function M.raise(code, message, fields)
  error(M.new(code, message, fields), 2)
end

--- A usage error: exit code 2, and a pointer to the command's help.
function M.usage(message, command)
  local hint = command and ("see 'banger " .. command .. " --help'") or nil
  error(M.new("EUSAGE", message, { exit = 2, hint = hint }), 2)
end

--- Ends the program with `code` after unwinding, so <close> handlers run.
-- `os.exit` is routed here by banger.main, with Lua's meaning of its
-- argument: true or none is success, false is failure, else the status.
function M.exit(code)
  if code == nil or code == true then
    code = 0
  elseif code == false then
    code = 1
  end
  local status = math.tointeger(code)
  if not status then
    error("bad argument #1 to 'exit' (boolean or integer expected, got " .. (type(code) == "number" and "a fraction" or type(code)) .. ")", 2)
  end
  error(M.new("EXIT", "exit " .. status, { exit = status, silent = true }), 2)
end

--- Turns `nil, message, code` into a raised error; passes anything else through.
function M.check(...)
  if select("#", ...) >= 2 and (...) == nil and type(select(2, ...)) == "string" then
    local _, message, code = ...
    error(M.new(code or "EFAIL", message), 2)
  end
  return ...
end

local wrap_value

local function pass(...)
  if select("#", ...) >= 2 and (...) == nil and type(select(2, ...)) == "string" then
    local _, message, code = ...
    error(M.new(code or "EFAIL", message), 3)
  end
  if select("#", ...) == 1 then
    return wrap_value((...))
  end
  return ...
end

-- A proxy over a native handle whose methods raise instead of returning
-- nil, message, code. It keeps <close> and tostring working.
local handle_mt = {
  __index = function(self, key)
    local native = rawget(self, "__native")
    local v = native[key]
    if type(v) ~= "function" then
      return v
    end
    local f = function(_, ...)
      return pass(v(native, ...))
    end
    rawset(self, key, f)
    return f
  end,
  __close = function(self)
    rawget(self, "__native"):close()
  end,
  __tostring = function(self)
    return tostring(rawget(self, "__native"))
  end,
}

function wrap_value(v)
  if type(v) == "userdata" then
    local mt = getmetatable(v)
    local name = type(mt) == "table" and rawget(mt, "__name")
    if type(name) == "string" and name:sub(1, 7) == "banger." then
      return setmetatable({ __native = v }, handle_mt)
    end
  end
  return v
end

--- The raising view of a native handle.
function M.wrap_handle(h)
  return wrap_value(h)
end

--- The raising view of a native module (functions and returned handles).
function M.wrap(mod)
  local out = {}
  for k, v in pairs(mod) do
    if type(v) == "function" then
      out[k] = function(...)
        return pass(v(...))
      end
    else
      out[k] = v
    end
  end
  return out
end

--- The native handle behind a wrapped one (for passing back to natives).
function M.unwrap(h)
  if type(h) == "table" and rawget(h, "__native") then
    return rawget(h, "__native")
  end
  return h
end

--- Renders any error value for the user: structured errors by message,
-- strings as they are.
function M.message(e)
  if M.is(e) then
    return e.message
  end
  if type(e) == "table" and e.message then
    return tostring(e.message)
  end
  return tostring(e)
end

return M
