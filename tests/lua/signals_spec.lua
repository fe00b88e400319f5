-- SIGTERM and SIGINT end banger's long-running commands at once and cleanly:
-- real `banger dns serve` and `banger vm logs -f` processes, each signal
-- timed from the moment it is sent, the exit status 128 + the signal (an
-- exit, not a death by the signal: the cleanups ran), nothing left bound.
-- The streaming `vm run` and `vm logs -f` of a real guest are in
-- e2e_signals_spec.lua, the root helper in helper_spec.lua.
local dns = require("banger.native.dns")

local SIGNALS = { { name = "SIGTERM", number = 15, status = 143, says = "terminated" },
  { name = "SIGINT", number = 2, status = 130, says = "interrupted" } }

local function free_port()
  local s = dns.listen("127.0.0.1", 0)
  local port = s:port()
  s:close()
  return port
end

local wait_for = t.wait_for

-- Sends `sig` and returns the exit status and how long the exit took.
local function signal_and_time(child, sig)
  local start = banger.sys.monotonic_ms()
  child:kill(sig.number)
  local st = child:wait(10000)
  return st, banger.sys.monotonic_ms() - start
end

local function port_taken(port)
  local s = dns.listen("127.0.0.1", port)
  if s then
    s:close()
    return false
  end
  return true
end

describe("signals", function()
  for _, sig in ipairs(SIGNALS) do
    it(sig.name .. " ends dns serve within 1 s, exit " .. sig.status .. ", its port released", function()
      local home = t.tmpdir()
      local port = free_port()
      t.write(home .. "/.config/banger/config.lua",
        string.format('return { network = { mode = "off", dns = "127.0.0.1:%d" } }\n', port))
      local err = home .. "/serve.err"
      -- --idle-exit far away: only the signal may end it.
      local server = t.spawn({ t.bin(), "dns", "serve", "--idle-exit", "3600", env = t.env(home), cwd = home,
        stderr = { file = err, append = false } })
      wait_for(function() return port_taken(port) end, 10000, "the responder to bind " .. port)
      local st, ms = signal_and_time(server, sig)
      t.eq({ st.exited, st.code }, { true, sig.status }, t.read(err))
      t.truthy(ms < 1000, "exit took " .. ms .. " ms")
      t.contains(t.read(err), "banger: " .. sig.says)
      t.falsy(port_taken(port), "the port is free again")
    end)

    it(sig.name .. " ends vm logs -f within 1 s, exit " .. sig.status, function()
      local home = t.tmpdir()
      local script = home .. "/row.lua"
      t.write(script, [[
banger.state.db():exec("INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, state, vm_dir, created_at, updated_at) VALUES ('id1', 'quiet', 'i', 'k', 'qemu', 1, 128, 512, 64, 'stopped', '/nonexistent', 'now', 'now')")
]])
      t.eq(t.banger({ "run", script }, { home = home }).code, 0)
      local err = home .. "/logs.err"
      -- No console log yet: -f waits for one (sleeping between looks).
      local logs = t.spawn({ t.bin(), "vm", "logs", "-f", "quiet", env = t.env(home), cwd = home,
        stderr = { file = err, append = false } })
      wait_for(function()
        return banger.fs.exists(err) and t.read(err):find("no console output yet", 1, true)
      end, 10000, "vm logs to start following")
      local st, ms = signal_and_time(logs, sig)
      t.eq({ st.exited, st.code }, { true, sig.status }, t.read(err))
      t.truthy(ms < 1000, "exit took " .. ms .. " ms")
    end)
  end

  it("the interrupt waits for a native to return: its Lua callbacks are not cut off", function()
    -- A callback running inside a native when SIGINT lands completes; the
    -- interrupt is raised by the next instruction after the native returns.
    local home = t.tmpdir()
    local script = home .. "/cb.lua"
    t.write(script, [[
local ext4 = require("banger.native.ext4")
local out = arg[1]
local fs <close> = ext4.create(out .. "/img.ext4", 16 * 1024 * 1024)
local tar = out .. "/layer.tar"
local pid = banger.sys.getpid()
local calls = 0
local ok, err = pcall(function()
  fs:apply_layer(tar, { on_progress = function()
    calls = calls + 1
    if calls == 1 then
      -- the raw native: its ECANCELED is a return value, not an error
      require("banger.native.proc").run({ "kill", "-INT", tostring(pid) })
      -- still inside the callback: this must run
      io.stdout:write("callback finished\n")
      io.stdout:flush()
    end
  end })
  io.stdout:write("after the native\n")
end)
io.stdout:write("caught: ", tostring(err and err.code), "\n")
]])
    local files = home .. "/files"
    for i = 1, 3 do
      t.write(files .. "/f" .. i, string.rep("x", 70000))
    end
    banger.proc.run({ "tar", "-C", files, "-cf", home .. "/layer.tar", "." })
    local r = t.banger({ "run", script, home }, { home = home })
    t.contains(r.stdout, "callback finished\n")
    t.contains(r.stdout, "caught: ECANCELED\n")
    t.not_contains(r.stdout, "after the native")
  end)

  it("banger.errors raises the host's interrupt error: 130 and 'interrupted' by default, 143 'terminated' after SIGTERM", function()
    -- One mapping from signal to exit status and message (the host's):
    -- errors.interrupted() raises the same table the Ctrl-C hook raises.
    local home = t.tmpdir()
    local script = home .. "/int.lua"
    t.write(script, [[
local errors = banger.errors
local function show(tag, e)
  io.stdout:write(string.format("%s %s %s %s %s\n", tag, tostring(errors.is(e)), e.code, e.message, e.exit))
end
io.stdout:write("status ", errors.interrupt_status(), "\n")
show("quiet", select(2, pcall(errors.interrupted)))
local ok, hook = pcall(function()
  require("banger.native.proc").run({ "kill", "-TERM", tostring(banger.sys.getpid()) })
  while true do end -- the hook raises at the next instruction
end)
show("hook", hook)
show("after", select(2, pcall(errors.interrupted)))
show("new", errors.new("ECANCELED", "x"))
io.stdout:write("status ", errors.interrupt_status(), "\n")
banger.sys.clear_interrupt()
]])
    local r = t.banger({ "run", script }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, table.concat({
      "status 130",
      "quiet true ECANCELED interrupted 130",
      "hook true ECANCELED terminated 143",
      "after true ECANCELED terminated 143",
      "new true ECANCELED x 143",
      "status 143",
      "",
    }, "\n"))
  end)
end)
