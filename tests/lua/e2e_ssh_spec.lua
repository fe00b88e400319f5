-- SSH end to end on a real guest running Debian's dropbear: vm run goes over
-- SSH and pins the host key on first connect; re-keying the guest makes the
-- next connection fail as a possible MITM; vm delete drops the pins. The VM
-- has a real network, in a namespace the test made.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

describe("ssh into a real guest", function()
  local world
  after_each(function()
    netns.cleanup(world)
    world = nil
  end)

  it("vm run over SSH pins the key; a re-keyed guest is refused; delete forgets", function()
    world = netns.world("unused\n")
    local home = e2e.home()
    e2e.ssh_image(home)
    local banger_in_ns = netns.banger(world.host, home)

    local r = banger_in_ns({ "vm", "run", "--name", "sshvm", "--image", "tiny-ssh", "--memory", "256MiB", "--",
      "cat", "/etc/hostname", "/proc/sys/kernel/hostname" })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "sshvm")
    local kh = home .. "/.local/state/banger/ssh/known_hosts"
    local pins = t.read(kh)
    t.truthy(pins and pins:find("172.30.0.2,sshvm.vm ", 1, true), "pinned on first connect: " .. tostring(pins))

    -- the system ssh (vm ssh) trusts the same pin
    local s = banger_in_ns({ "vm", "ssh", "sshvm", "--", "echo", "via system ssh" }, 60000)
    t.eq(s.code, 0, s.stderr)
    t.eq(s.stdout, "via system ssh\n")

    -- banger.sandbox's exec goes over SSH on this VM: the guest's sshd is
    -- learned once through the agent, then an exec needs no agent lock
    t.write(home .. "/sbx.lua", [[
local sandbox = require("banger.sandbox")
local r = { first = sandbox.exec("sshvm", { argv = { "sh", "-c", "echo out; echo err >&2; exit 4" }, stdin = "" }) }
local t0 = banger.sys.monotonic_ms()
r.timeout = sandbox.exec("sshvm", { argv = { "sh", "-c", "echo before; exec sleep 600" }, timeout_ms = 2000 })
r.took = banger.sys.monotonic_ms() - t0
r.left = sandbox.exec("sshvm", { argv = { "sh", "-c", "pidof sleep || echo none" } }).stdout
r.dir = banger.vms.dir(banger.vms.require("sshvm"))
print(banger.json.encode(r))
]])
    local sx = banger_in_ns({ "run", home .. "/sbx.lua" }, 120000)
    t.eq(sx.code, 0, sx.stderr)
    local sr = banger.json.decode(sx.stdout)
    t.eq(sr.first.code, 4)
    t.eq(sr.first.stdout, "out\n")
    t.eq(sr.first.stderr, "err\n")
    t.eq(sr.timeout.timed_out, true)
    t.eq(sr.timeout.signal, 9)
    t.eq(sr.timeout.code, 137)
    t.eq(sr.timeout.stdout, "before\n")
    t.truthy(sr.took >= 2000 and sr.took < 60000, sr.took)
    t.eq(sr.left, "none\n", "the timed-out command is gone from the guest")
    local ready = home .. "/lock-held"
    t.write(home .. "/hold.lua", string.format([[
local l = banger.fs.lock(%q)
local f = assert(io.open(%q, "w"))
f:close()
banger.sys.sleep_ms(600000)
]], sr.dir .. "/agent.lock", ready))
    local holder = t.spawn({ t.bin(), "run", home .. "/hold.lua", env = t.env(home), cwd = home, stdout = "null",
      stderr = "null" })
    t.wait_for(function() return banger.fs.exists(ready) end, 60000, "the agent lock holder")
    t.write(home .. "/sbx2.lua", [[
local sandbox = require("banger.sandbox")
sandbox.agent_wait_ms = 200
local ok, e = pcall(sandbox.list_files, "sshvm", "/")
print(banger.json.encode({ busy = not ok and e.code, exec = sandbox.exec("sshvm", { argv = { "echo", "over ssh" } }) }))
]])
    local sx2 = banger_in_ns({ "run", home .. "/sbx2.lua" }, 120000)
    holder:kill(9)
    holder:wait()
    t.eq(sx2.code, 0, sx2.stderr)
    local sr2 = banger.json.decode(sx2.stdout)
    t.eq(sr2.busy, "EBUSY", "the agent is held by the other process")
    t.eq(sr2.exec.stdout, "over ssh\n", "while exec over SSH needs no agent")

    -- re-key the guest: new host keys on the next connection
    local rekey = banger_in_ns({ "vm", "exec", "sshvm", "--", "sh", "-c",
      "rm -f /etc/dropbear/*_host_key && kill $(pidof dropbear)" }, 60000)
    t.eq(rekey.code, 0, rekey.stderr)
    t.write(home .. "/connect.lua", [[
local row = banger.vms.require("sshvm")
local ok, err = pcall(banger.ssh.wait_connect, row, 20000)
print(ok and "connected" or (err.code .. ": " .. err.message))
]])
    local c = banger_in_ns({ "run", home .. "/connect.lua" }, 60000)
    t.contains(c.stdout, "EHOSTKEY: host key of VM sshvm changed: POSSIBLE MAN-IN-THE-MIDDLE ATTACK")
    t.eq(t.read(kh), pins, "the pin was not replaced")
    local sys_ssh = banger_in_ns({ "vm", "ssh", "sshvm", "--", "true" }, 60000)
    t.eq(sys_ssh.code ~= 0, true, "the system ssh refuses too")

    t.eq(banger_in_ns({ "vm", "delete", "-f", "sshvm" }).code, 0)
    t.not_contains(t.read(kh) or "", "sshvm.vm")
    t.not_contains(t.read(kh) or "", "172.30.0.2")
  end)
end)
