-- banger.ui.percent_progress, the one percentage printer (image pull, kernel
-- pull): on a real terminal (a pty from util-linux `script`) and off one.
local BODY = [[
local p = banger.ui.percent_progress(function(pct, done, total)
  return string.format("%3d%% %d/%d", pct, done, total)
end)
io.stdout:write(p.update and "tty\n" or "no tty\n")
io.stdout:flush()
if p.update then
  for _, done in ipairs({ 0, 1, 2, 3, 100, 200 }) do
    p.update(done, 200)
  end
  p.update(0, 0)
end
p.finish()
p.finish()
io.stderr:write("|")
local q = banger.ui.percent_progress(function(pct) return pct .. "%" end)
if q.update then
  q.update(1, 4)
end
q.clear()
q.clear()
io.stderr:write("|end")
]]

describe("ui.percent_progress", function()
  it("on a terminal redraws one line only when the percentage changes; finish ends it, clear erases it", function()
    local home = t.tmpdir()
    local script = home .. "/p.lua"
    t.write(script, BODY)
    local cmd = "exec " .. t.bin() .. " run " .. script .. " 2>&1"
    local r = banger.proc.run({ "script", "-qec", cmd, "/dev/null", env = t.env(home), stdin = "null" })
    t.eq(r.code, 0, r.stderr)
    -- the pty turns "\n" into "\r\n"
    t.eq(r.stdout, "tty\r\n\r    0% 0/200\r    1% 2/200\r   50% 100/200\r  100% 200/200\r    0% 0/0\r\n|\r  25%\r\27[K|end")
  end)

  it("off a terminal prints nothing and gives no update callback", function()
    local home = t.tmpdir()
    local script = home .. "/p.lua"
    t.write(script, BODY)
    local r = t.banger({ "run", script }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "no tty\n")
    t.eq(r.stderr, "||end")
  end)
end)
