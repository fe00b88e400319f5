--- banger.repl: an interactive Lua prompt with banger's API (`banger repl`,
-- or `banger run` on a terminal). A line is tried as an expression first
-- (its values are printed), then as a statement; an incomplete chunk asks
-- for more lines. Errors and Ctrl-C end the current chunk, not the prompt.
local errors = require("banger.errors")
local sys = require("banger.native.sys")

local M = {}

local function show(v)
  if type(v) == "table" and not getmetatable(v) then
    local ok, text = pcall(require("banger.native.json").encode, v, { indent = 2 })
    if ok then
      return text
    end
  end
  if type(v) == "string" then
    return string.format("%q", v)
  end
  return tostring(v)
end

-- Compiles `source` as an expression, else as a statement. On failure:
-- nil, the statement's error, and whether more lines could complete it.
local function compile(source, env)
  local chunk, expr_err = load("return " .. source, "=repl", "t", env)
  if chunk then
    return chunk
  end
  local err
  chunk, err = load(source, "=repl", "t", env)
  if chunk then
    return chunk
  end
  return nil, err, err:sub(-5) == "<eof>" or expr_err:sub(-5) == "<eof>"
end

local function evaluate(chunk)
  local results = table.pack(pcall(chunk))
  if not results[1] then
    local e = results[2]
    if errors.is(e) and e.code == "EXIT" then
      error(e, 0) -- os.exit() leaves the prompt
    end
    io.stderr:write("error: ", errors.message(e), "\n")
    sys.clear_interrupt()
    return
  end
  for i = 2, results.n do
    io.stdout:write(show(results[i]), i < results.n and "\t" or "\n")
  end
end

function M.run(env)
  local build = sys.build()
  io.stdout:write("banger ", build.version, " (", _VERSION, "): the `banger` table is loaded; Ctrl-D leaves.\n")
  local buffer = nil
  while true do
    io.stdout:write(buffer and ">> " or "> ")
    io.stdout:flush()
    local ok, line = pcall(io.stdin.read, io.stdin, "L")
    if not ok then -- Ctrl-C at the prompt drops the chunk being typed
      io.stdout:write("\n")
      sys.clear_interrupt()
      buffer = nil
    elseif line == nil then
      io.stdout:write("\n")
      return 0
    else
      buffer = (buffer or "") .. line
      local chunk, err, more = compile(buffer, env)
      if chunk then
        buffer = nil
        evaluate(chunk)
      elseif not more then
        io.stderr:write(err, "\n")
        buffer = nil
      end
    end
  end
end

return M
