-- The <vm>.vm responder for real: `banger dns serve` answering from a real
-- state DB, queried with dig (Debian's dnsutils).
local function free_port()
  local s = require("banger.native.dns").listen("127.0.0.1", 0)
  local port = s:port()
  s:close()
  return port
end

local function dig(port, ...)
  local argv = { "dig", "@127.0.0.1", "-p", tostring(port), "+norec", "+time=1", "+tries=2" }
  for _, a in ipairs({ ... }) do
    argv[#argv + 1] = a
  end
  local r = banger.proc.run(argv)
  return r.stdout
end

-- Rows the responder answers from. A "running" row must be alive for
-- reconcile (run by every command) to leave it running: each gets a
-- stand-in hypervisor, a sleep whose pid and command line the row records
-- exactly as a real launch records QEMU's.
local function add_vms(home)
  local sleepers = {}
  for i = 1, 2 do
    sleepers[i] = t.spawn({ "sleep", "600" })
  end
  local script = home .. "/rows.lua"
  t.write(script, [[
local db = banger.state.db()
local function add(name, ip, state, pid)
  db:exec("INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, ip, state, vm_dir, created_at, updated_at, handle_pid, handle_cmdline) VALUES (?, ?, 'i', 'k', 'qemu', 1, 128, 512, 64, ?, ?, '/x', 'now', 'now', ?, ?)",
    name, name, ip, state, pid and math.tointeger(tonumber(pid)) or banger.json.null,
    pid and '["sleep","600"]' or banger.json.null)
end
add("web", "172.30.0.5", "running", arg[1])
add("off", "172.30.0.6", "stopped")
add("noip", banger.json.null, "running", arg[2])
]])
  local r = t.banger({ "run", script, tostring(sleepers[1]:pid()), tostring(sleepers[2]:pid()) }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return sleepers
end

local function stop_all(sleepers)
  for _, s in ipairs(sleepers) do
    s:kill(9)
    s:wait()
  end
end

describe("dns serve", function()
  it("answers running VMs, refuses the rest, and exits when idle", function()
    local home = t.tmpdir()
    local port = free_port()
    t.write(home .. "/.config/banger/config.lua",
      string.format('return { network = { mode = "off", dns = "127.0.0.1:%d" } }\n', port))
    local sleepers = add_vms(home)
    local server = t.spawn({ t.bin(), "dns", "serve", "--idle-exit", "1", env = t.env(home), cwd = home,
      stderr = "pipe" })
    local out
    t.wait_for(function()
      out = dig(port, "web.vm", "A")
      return out:find("status: NOERROR", 1, true)
    end, 30000, "the responder to answer web.vm")
    t.contains(out, "status: NOERROR")
    t.contains(out, "flags: qr aa;")
    t.truthy(out:find("web%.vm%.%s+5%s+IN%s+A%s+172%.30%.0%.5"), out)

    local upper = dig(port, "WEB.VM", "A")
    t.truthy(upper:find("WEB%.VM%.%s+5%s+IN%s+A%s+172%.30%.0%.5"), upper)
    t.contains(dig(port, "off.vm"), "status: NXDOMAIN")
    t.contains(dig(port, "noip.vm"), "status: NXDOMAIN")
    t.contains(dig(port, "missing.vm"), "status: NXDOMAIN")
    t.contains(dig(port, "a.web.vm"), "status: NXDOMAIN")
    local aaaa = dig(port, "web.vm", "AAAA")
    t.contains(aaaa, "status: NOERROR")
    t.contains(aaaa, "ANSWER: 0")
    t.contains(dig(port, "example.com"), "status: REFUSED")
    t.contains(dig(port, "+opcode=2", "web.vm"), "status: NOTIMP")

    local status = t.banger({ "dns", "status", "--json" }, { home = home })
    local s = banger.json.decode(status.stdout)
    t.eq(s.running, true)
    t.eq(s.names, { { name = "web.vm", ip = "172.30.0.5" } }, "only running VMs with an address")
    t.eq(s.address, "127.0.0.1:" .. port)

    -- a second responder for the same user sees the first and leaves
    local second = t.banger({ "dns", "serve" }, { home = home })
    t.eq(second.code, 0)
    t.contains(second.stderr, "already running")

    -- the last VM stops: the responder exits on its own
    t.write(home .. "/stop.lua", 'banger.state.db():exec("UPDATE vms SET state = \'stopped\'")\n')
    t.eq(t.banger({ "run", home .. "/stop.lua" }, { home = home }).code, 0)
    local st = server:wait(15000)
    t.eq(st.code, 0, server:read_all("stderr"))
    stop_all(sleepers)
  end)
end)
