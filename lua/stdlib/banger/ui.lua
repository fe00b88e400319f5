--- banger.ui: how recipes talk to the user. Data goes to stdout (as a
-- table for people, JSON with --json); progress, stages and warnings go to
-- stderr so they never corrupt piped output.
local json = require("banger.native.json")
local sys = require("banger.native.sys")

local M = {}

function M.is_tty(fd)
  return sys.isatty(fd or 1)
end

function M.print(...)
  io.stdout:write(table.concat({ ... }, " "), "\n")
end

function M.info(msg)
  io.stderr:write(msg, "\n")
end

function M.warn(msg)
  io.stderr:write("banger: warning: ", msg, "\n")
  require("banger.log").warn("ui", msg)
end

function M.json(value)
  io.stdout:write(assert(json.encode(value, { indent = 2 })), "\n")
end

--- Prints rows as aligned columns. columns = { { "NAME", "name" }, ... }
-- where the second element is a field name or a function(row) -> string.
function M.table(rows, columns)
  local cells, widths = {}, {}
  for c, col in ipairs(columns) do
    widths[c] = #col[1]
  end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, col in ipairs(columns) do
      local v = M.text(type(col[2]) == "function" and col[2](row) or row[col[2]])
      cells[r][c] = v
      widths[c] = math.max(widths[c], #v)
    end
  end
  local function line(values)
    local parts = {}
    for c, v in ipairs(values) do
      parts[c] = c == #values and v or (v .. string.rep(" ", widths[c] - #v))
    end
    io.stdout:write(table.concat(parts, "  "), "\n")
  end
  local header = {}
  for c, col in ipairs(columns) do
    header[c] = col[1]
  end
  line(header)
  for _, row in ipairs(cells) do
    line(row)
  end
end

--- Prints `data` as JSON when opts.json, else calls render(data). Nothing
-- when opts.quiet (a recipe run by another recipe: its stdout is not ours).
-- `shape` names the documented record type of the JSON ("vm", "array of
-- image", see banger.records): every key present, null when unset.
function M.emit(opts, data, render, shape)
  if opts.quiet then
    return
  end
  if opts.json then
    M.json(shape and require("banger.records").shape(shape, data) or data)
  else
    render(data)
  end
end

--- How show commands print a value: unset is "-", not "nil".
function M.text(v)
  if v == nil or v == json.null then
    return "-"
  end
  return tostring(v)
end

--- A percentage on one stderr line ("\r  <text>"), redrawn only when the
-- percentage changes, and only on a terminal. text(pct, done, total)
-- returns the line. Returns p: p.update(done, total) (nil when stderr is
-- not a terminal, so a native skips the callbacks), p.clear() erases a shown
-- line, p.finish() ends it with a newline.
---@param text fun(pct: integer, done: integer, total: integer): string
---@return { update: fun(done: integer, total: integer)?, clear: fun(), finish: fun() }
function M.percent_progress(text)
  local p, shown = {}, -1
  if M.is_tty(2) then
    function p.update(done, total)
      local pct = total > 0 and math.floor(done * 100 / total) or 0
      if pct ~= shown then
        shown = pct
        io.stderr:write("\r  ", text(pct, done, total))
      end
    end
  end
  function p.clear()
    if shown >= 0 then
      io.stderr:write("\r\27[K")
      shown = -1
    end
  end
  function p.finish()
    if shown >= 0 then
      io.stderr:write("\n")
      shown = -1
    end
  end
  return p
end

--- A stage printer for long operations: "  [1.2s] launch: qemu (tcg)".
function M.stages()
  local start = sys.monotonic_ms()
  return function(name, detail)
    local t = (sys.monotonic_ms() - start) / 1000
    io.stderr:write(string.format("  [%5.1fs] %s%s\n", t, name, detail and (": " .. detail) or ""))
    require("banger.log").info("stage", name, { detail = detail })
  end
end

return M
