-- banger.guest.wait_ready when the agent never answers: the timeout names
-- the endpoint and ends with the last lines of the VM's console log, which
-- is where a boot that never reached the agent says why.
describe("guest.wait_ready", function()
  it("a timeout quotes the console log's last ten lines and points at vm logs", function()
    local home = t.tmpdir()
    local path = t.tmpdir() .. "/s.lua"
    t.write(path, [[
local row = { id = "0123456789abcdef0123", name = "box" }
local dir = banger.vms.dir(row)
require("banger.native.fs").mkdir(dir, 448, true)
local f = assert(io.open(dir .. "/console.log", "w"))
for i = 1, 30 do f:write("boot line " .. i .. "\r\n") end
f:close()
local ok, e = pcall(banger.guest.wait_ready, row, { agent = { kind = "unix", path = dir .. "/none.sock" } }, 500)
assert(not ok)
io.write(banger.json.encode({ code = e.code, message = e.message, hint = e.hint }))
]])
    local r = t.banger({ "run", path }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local e = banger.json.decode(r.stdout)
    t.eq(e.code, "ETIMEDOUT")
    t.contains(e.message, "the guest agent did not answer in time")
    local tail = {}
    for i = 21, 30 do
      tail[#tail + 1] = "  boot line " .. i
    end
    t.contains(e.message, "; the console log ends with:\n" .. table.concat(tail, "\n") .. "\n")
    t.not_contains(e.message, "boot line 20\n")
    t.eq(e.hint, "the whole log: banger vm logs box")
  end)
end)
