--- banger.datafile: Lua files that hold data (config.lua, the data part of
-- a project's banger.lua). They are evaluated by banger.native.sandbox: a
-- Lua state of their own with no libraries, a memory cap and an instruction
-- budget, so reading one can neither reach the host nor hang banger. Errors
-- name the file and, for a key that breaks a rule, the line it is on.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local sandbox = require("banger.native.sandbox")

local M = {}

-- Data files are written by hand; anything larger is not one.
M.max_bytes = 1024 * 1024

--- Reads `path` (nil when it does not exist); raises for anything else.
function M.read(path)
  local st = fs.stat(path)
  if not st then
    return nil
  end
  if st.type ~= "file" then
    errors.raise("EINVAL", path .. ": not a regular file", { exit = 78 })
  end
  if st.size > M.max_bytes then
    errors.raise("EINVAL", path .. ": larger than 1 MiB; a data file holds settings, not data sets", { exit = 78 })
  end
  return errors.check(fs.read(path))
end

--- Evaluates `text` as data. Returns the value and the key paths of the
-- functions it defined (not copied: code is not data). opts.globals: a file
-- may assign globals instead of returning a table.
function M.eval(text, path, opts)
  local value, functions_or_msg, code = sandbox.eval(text, "@" .. path, { globals = opts and opts.globals or false })
  if value == nil and type(functions_or_msg) == "string" then
    errors.raise(code, functions_or_msg, { exit = 78 })
  end
  return value, functions_or_msg
end

-- Blanks out comments, keeping every offset, so a key named in a comment
-- is not taken for the key itself.
local function without_comments(text)
  return (text:gsub("%-%-[^\n]*", function(c)
    return (" "):rep(#c)
  end))
end

local function line_at(text, pos)
  local _, newlines = text:sub(1, pos):gsub("\n", "")
  return newlines + 1
end

-- `name = `, `["name"] = ` or `function name(`, whichever comes first.
local function find_key(code, name, from)
  local best
  for _, pattern in ipairs({ "%f[%w_]" .. name .. "%s*=", "%[%s*[\"']" .. name .. "[\"']%s*%]%s*=",
    "%f[%w_]function%s+" .. name .. "%s*%(" }) do
    local at = code:find(pattern, from)
    if at and (not best or at < best) then
      best = at
    end
  end
  return best
end

--- The line where the value at `key` ("vm.memory", "file_sync[2].guest")
-- is written in `text`, or nil. Lua keeps no positions for table fields, so
-- this searches the text: each part of the path after the previous one, the
-- n-th occurrence of a field for the n-th list item.
function M.line_of(text, key)
  local code = without_comments(text)
  local pos, found = 1, nil
  local repeat_next = 1
  for part in key:gmatch("[^.]+") do
    local name, index = part:match("^([%w_]+)%[(%d+)%]$")
    name = name or part
    for _ = 1, repeat_next do
      local at = find_key(code, name, pos)
      if not at then
        return found and line_at(text, found) or nil
      end
      found, pos = at, at + 1
    end
    repeat_next = tonumber(index) or 1
  end
  return found and line_at(text, found) or nil
end

--- A validation error from banger.config (it carries `key` and `why`)
-- re-raised with the file's line: "path:12: vm.memory: ...".
function M.locate(e, path, text)
  if errors.is(e) and e.key and e.why then
    local line = M.line_of(text, e.key)
    e.message = path .. (line and (":" .. line) or "") .. ": " .. e.key .. ": " .. e.why
  end
  error(e, 0)
end

return M
