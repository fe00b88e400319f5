-- The forwarder process without booting a kernel: a VM row whose "guest"
-- address is 127.0.0.1 inside a network namespace of the test's own, where
-- busybox httpd plays the guest's server. Covers the detached process, its
-- readiness report through the pipe, a port in use reported to the caller,
-- its record and liveness by pid and command line, the census of a
-- forwarder no row records, and reconcile stopping the forwarder of a VM
-- whose hypervisor is gone. e2e_forward_spec.lua does it with a real guest.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local function in_ns(ns, home, script)
  local path = t.tmpdir() .. "/s.lua"
  t.write(path, script)
  return netns.run(ns, { t.bin(), "run", path }, { env = t.env(home), cwd = home, timeout_ms = 60000 })
end

local function alive(pid, cmdline)
  local now = banger.proc.cmdline(pid)
  return now ~= nil and table.concat(now, " ") == table.concat(cmdline, " ")
end

describe("the forwarder process", function()
  local httpd, occupier
  after_each(function()
    for _, c in ipairs({ httpd or false, occupier or false }) do
      if c then
        c:kill(9)
        c:wait()
      end
    end
    httpd, occupier = nil, nil
    netns.cleanup()
  end)

  it("the census counts this uid's processes only, whatever another uid's command line says", function()
    local home = t.tmpdir()
    t.eq(t.banger({ "vm", "list" }, { home = home }).code, 0) -- the state database exists
    local dir = home .. "/.local/state/banger/vms/abcdef012345"
    -- posers: a shell whose command line is exactly a forwarder's for a VM
    -- directory of this home (bash's exec -a sets argv[0]; sh runs ./vm,
    -- a script blocked on its stdin)
    local cwd = t.tmpdir()
    banger.proc.run({ "chmod", "755", cwd })
    t.write(cwd .. "/vm", "read -r x\n", 420)
    local function poser(prefix)
      local argv = {}
      for _, a in ipairs(prefix) do
        argv[#argv + 1] = a
      end
      for _, a in ipairs({ "bash", "-c", 'exec -a "$0" sh vm forwarder --vm-dir "$1" ghost', t.bin(), dir }) do
        argv[#argv + 1] = a
      end
      argv.cwd, argv.stdin, argv.stdout, argv.stderr = cwd, "pipe", "null", "null"
      local c = t.spawn(argv)
      t.wait_for(function()
        local now = banger.proc.cmdline(c:pid())
        return now and now[3] == "forwarder"
      end, 10000, "the poser to exec")
      return c
    end
    local theirs = poser({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups" })
    local ours = poser({})
    local path = t.tmpdir() .. "/census.lua"
    t.write(path, [[
local seen = {}
for _, o in ipairs(banger.census.scan()) do
  seen[#seen + 1] = o.kind .. ":" .. (o.pid or "")
end
local removed = banger.census.remove()
print(banger.json.encode({ seen = seen, removed = #removed }))
]])
    local r = t.banger({ "run", path }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local out = banger.json.decode(r.stdout)
    t.eq(out.seen, { "forwarder:" .. ours:pid() })
    t.eq(out.removed, 1)
    t.eq(ours:wait(10000).signal, 9)
    t.truthy(banger.proc.cmdline(theirs:pid()), "another uid's process is never killed")
    theirs:kill(9)
    theirs:wait()
  end)

  it("binds, reports ready, forwards, is recorded; a taken port fails the caller; reconcile stops it", function()
    local ns = netns.new("fwd")
    local www = t.tmpdir()
    t.write(www .. "/probe", "hello through the forwarder\n")
    httpd = t.spawn({ "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "127.0.0.1:8000", "-h", www })
    occupier = t.spawn({ "ip", "netns", "exec", ns, "busybox", "httpd", "-f", "-p", "127.0.0.1:18082", "-h", www })
    t.wait_for(function()
      return netns.run(ns, { "curl", "-sf", "-m", "1", "http://127.0.0.1:18082/probe" }).code == 0
    end, 30000, "busybox httpd")
    local home = t.tmpdir()
    -- another banger home of the same uid with a forwarder of its own: never
    -- this home's census's, nor its reconcile's
    local other_home = t.tmpdir()
    local r = in_ns(ns, other_home, [[
local row = banger.vms.insert("elsewhere", { image = "img", kernel = "k", driver = "qemu", vcpus = 1,
  memory_mib = 256, disk_mib = 1024, work_disk_mib = 64, nat = 0 }, { allocate_ip = function() return "127.0.0.9" end })
banger.fs.mkdir(banger.vms.dir(row), 448, true)
banger.vms.set_state(row, "running")
banger.forwards.add(row, { { proto = "tcp", host_port = 18089, guest_port = 8000 } })
banger.forwarder.start(row)
print(banger.json.encode(banger.host_objects.get(row).forwarder))
]])
    t.eq(r.code, 0, r.stderr)
    local elsewhere = banger.json.decode(r.stdout)

    r = in_ns(ns, home, [[
local fwd, vms, objects = banger.forwarder, banger.vms, banger.host_objects
local n = 0
local function vm(name)
  n = n + 1
  local row = vms.insert(name, { image = "img", kernel = "k", driver = "qemu", vcpus = 1, memory_mib = 256,
    disk_mib = 1024, work_disk_mib = 64, nat = 0 }, { allocate_ip = function() return "127.0.0." .. n end })
  banger.fs.mkdir(vms.dir(row), 448, true)
  vms.set_state(row, "running")
  return row
end
local row = vm("fw")
banger.forwards.add(row, { { proto = "tcp", host_port = 18080, guest_port = 8000 } })
fwd.start(row)
local out = { rec = objects.get(row).forwarder, running = fwd.running(row) }
-- a port another program holds: the caller gets EADDRINUSE, nothing stays recorded or running
local other = vm("other")
banger.forwards.add(other, { { proto = "tcp", host_port = 18082, guest_port = 8000 } })
local ok, e = pcall(fwd.start, other)
out.busy = { ok = ok, code = e.code, message = banger.errors.message(e) }
out.busy_rec = objects.get(vms.get("other")).forwarder or false
out.busy_left = #fwd.processes()
-- a forwarder no row records (a banger that died before writing it) is the census's
local ghost = vm("ghost")
banger.forwards.add(ghost, { { proto = "tcp", host_port = 18083, guest_port = 8000 } })
fwd.start(ghost)
local ghost_pid = objects.get(ghost).forwarder.pid
objects.forget(ghost, "forwarder")
local kinds = {}
for _, o in ipairs(banger.census.scan()) do
  kinds[#kinds + 1] = o.kind .. ":" .. (o.pid or "")
end
out.census = kinds
out.ghost_pid = ghost_pid
local removed = banger.census.remove()
out.removed = #removed
out.after = #fwd.processes()
print(banger.json.encode(out))
]])
    t.eq(r.code, 0, r.stderr)
    local out = banger.json.decode(r.stdout)
    t.eq(out.running, true)
    t.truthy(out.rec.pid > 0)
    t.eq(out.rec.cmdline[2], "vm")
    t.eq(out.rec.cmdline[3], "forwarder")
    t.eq(out.rec.cmdline[6], "fw")
    t.truthy(alive(out.rec.pid, out.rec.cmdline), "the forwarder outlives the command that started it")

    t.eq(out.busy.ok, false)
    t.eq(out.busy.code, "EADDRINUSE")
    t.contains(out.busy.message, "host port 127.0.0.1:18082/tcp is already in use by another program")
    t.eq(out.busy_rec, false)
    t.eq(out.busy_left, 2, "only fw's forwarder runs (and the other home's)")

    t.eq(out.census, { "forwarder:" .. out.ghost_pid })
    t.eq(out.removed, 1)
    t.eq(out.after, 2, "fw's and the other home's")

    -- through the forwarder, from the host side, to the "guest"
    local got = netns.run(ns, { "curl", "-sf", "-m", "5", "http://127.0.0.1:18080/probe" })
    t.eq(got.code, 0, got.stderr)
    t.eq(got.stdout, "hello through the forwarder\n")

    -- the next command's reconcile finds fw "running" with no hypervisor:
    -- the VM is marked stopped and its forwarder stopped with it
    r = netns.run(ns, { t.bin(), "vm", "list", "--json" }, { env = t.env(home), cwd = home })
    t.eq(r.code, 0, r.stderr)
    t.falsy(alive(out.rec.pid, out.rec.cmdline), "reconcile stopped the forwarder")
    t.truthy(netns.run(ns, { "curl", "-s", "-m", "2", "http://127.0.0.1:18080/probe" }).code ~= 0, "port 18080 is free")
    r = netns.run(ns, { t.bin(), "vm", "delete", "fw", "other", "ghost" }, { env = t.env(home), cwd = home })
    t.eq(r.code, 0, r.stderr)
    t.truthy(alive(elsewhere.pid, elsewhere.cmdline), "the other home's forwarder was left alone")
    r = netns.run(ns, { t.bin(), "vm", "delete", "elsewhere" }, { env = t.env(other_home), cwd = other_home })
    t.eq(r.code, 0, r.stderr)
    t.falsy(alive(elsewhere.pid, elsewhere.cmdline), "its own home stopped it")
  end)
end)
