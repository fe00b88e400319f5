-- The host-object census: `banger doctor` lists banger's objects that no VM
-- row accounts for and `banger vm prune --orphans` removes them, and only
-- them. The orphans are real: a VM whose row is removed behind banger's
-- back (its QEMU, sockets, disks, tap and NAT rules), a leaked tap and a
-- NAT rule for a tap that is gone. Next to them stand objects that are not
-- this user's banger's and must stay: a tap without banger's prefix, a
-- banger tap of another uid, banger taps of this uid that carry another
-- home's mark or none (another banger home's, being made), a QEMU of another banger home, a process of
-- another uid posing with our paths, another nftables table with a rule
-- tagged like ours, and a running VM of our own.
local hostenv = assert(loadfile(t.source_dir() .. "/tests/lua/hostenv.lua", "t", _ENV))()
local e2e = hostenv.e2e

local function kinds(list)
  local out = {}
  for _, o in ipairs(list) do
    out[#out + 1] = o.kind .. " " .. o.name
  end
  table.sort(out)
  return out
end

local function orphans_check(h)
  local r = h:banger({ "doctor", "--json" })
  local report = banger.json.decode(r.stdout)
  for _, c in ipairs(report.checks) do
    if c.name == "orphans" then
      return c
    end
  end
  error("doctor has no orphans check: " .. r.stdout)
end

local function priv_call(h, op, params)
  local r = h:banger({ "run", t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", op, banger.json.encode(params) })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

local function alive(pid)
  return banger.proc.cmdline(pid) ~= nil
end

describe("host-object census", function()
  local h
  local foreign = {}
  after_each(function()
    for _, c in ipairs(foreign) do
      pcall(c.kill, c, 9)
      pcall(c.wait, c, 5000)
    end
    foreign = {}
    if h then
      h:close()
    end
    hostenv.kill_leftovers("census" .. banger.sys.getpid())
    hostenv.netns.cleanup()
    h = nil
  end)

  -- A VM of `h`, created with NAT and without waiting for its guest.
  local function vm(name)
    local c = h:banger({ "vm", "create", name, "--nat", "--image", "tiny", "--memory", "256MiB", "--no-wait" })
    t.eq(c.code, 0, c.stderr)
    return h:vms()[name]
  end

  it("as root: lists exactly the orphans, removes exactly them, leaves everything else", function()
    h = hostenv.new("root")
    local prefix = "census" .. banger.sys.getpid()
    local keep, lost = vm(prefix .. "keep"), vm(prefix .. "lost")
    local lost_tap = "bgtap" .. lost.id:sub(1, 10)
    h:sql("DELETE FROM vms WHERE id = ?", lost.id)

    -- Leaks: a tap with this home's mark and no row, and a NAT rule of a tap that is gone.
    local mark = "banger:" .. banger.sys.sha256(h:state()):sub(1, 16)
    h:run({ "ip", "tuntap", "add", "bgtapleak1", "mode", "tap", "user", "0" })
    h:run({ "ip", "link", "set", "bgtapleak1", "alias", mark })
    t.eq(h:run({ "cat", "/sys/class/net/" .. lost_tap .. "/ifalias" }).stdout, mark .. "\n", "the helper marks taps")
    local gone = priv_call(h, "ensure_nat", { tap = "bgtapgone1", guest_ip = "172.30.0.99", bridge = "br-fc" })
    t.truthy(gone.ok, banger.json.encode(gone))

    -- What is not ours.
    h:run({ "ip", "tuntap", "add", "fgntap0", "mode", "tap", "user", "0" })
    h:run({ "ip", "tuntap", "add", "bgtapother1", "mode", "tap", "user", "12345" })
    h:run({ "ip", "tuntap", "add", "bgtapalien1", "mode", "tap", "user", "0" })
    h:run({ "ip", "link", "set", "bgtapalien1", "alias", "banger:0123456789abcdef" })
    h:run({ "ip", "tuntap", "add", "bgtapnomark1", "mode", "tap", "user", "0" })
    for _, cmd in ipairs({ "add table ip foreign",
      "add chain ip foreign post { type nat hook postrouting priority 100; }",
      'add rule ip foreign post ip saddr 172.30.0.98 masquerade comment "bgtapgone2"' }) do
      hostenv.netns.sh({ "ip", "netns", "exec", h.ns, "nft", cmd })
    end
    hostenv.netns.sh({ "ip", "netns", "exec", h.ns, "iptables", "-w", "-I", "DOCKER-USER", "1", "-s", "172.30.0.97",
      "-m", "comment", "--comment", "docker-own", "-j", "ACCEPT" })
    local other_home = t.tmpdir()
    local other_sock = other_home .. "/run/banger/vms/0123456789ab"
    banger.fs.mkdir(other_sock, 448, true)
    local other_qemu = t.spawn({ "qemu-system-x86_64", "-name", "banger-" .. prefix .. "other", "-M", "none", "-display",
      "none", "-nodefaults", "-S", "-qmp", "unix:" .. other_sock .. "/qmp.sock,server=on,wait=off", stdout = "null",
      stderr = "null" })
    foreign[#foreign + 1] = other_qemu
    -- (a shell blocked reading a pipe: one process, gone with its kill)
    local poser = t.spawn({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-c",
      'exec -a qemu-system-x86_64 sh -c "read -r x" sh ' .. h:runtime() .. "/vms/" .. lost.id .. "/qmp.sock",
      stdin = "pipe", stdout = "null", stderr = "null" })
    foreign[#foreign + 1] = poser
    e2e.wait_for(function()
      local argv = banger.proc.cmdline(poser:pid())
      return argv and argv[1] == "qemu-system-x86_64"
    end, 5000, "the poser to exec")
    local foreign_table = h:run({ "nft", "list", "table", "ip", "foreign" }).stdout

    local expected = kinds({
      { kind = "hypervisor", name = "banger-" .. prefix .. "lost" },
      { kind = "runtime_dir", name = h:runtime() .. "/vms/" .. lost.id },
      { kind = "vm_dir", name = h:state() .. "/vms/" .. lost.id },
      { kind = "tap", name = lost_tap },
      { kind = "nat", name = lost_tap },
      { kind = "tap", name = "bgtapleak1" },
      { kind = "nat", name = "bgtapgone1" },
    })
    local check = orphans_check(h)
    t.eq(check.status, "warn")
    t.eq(check.fix, "banger vm prune --orphans")
    t.eq(kinds(check.objects), expected)

    -- The helper's read-only listing: its gate refuses fields, and it
    -- reports banger's own tags only.
    t.eq(priv_call(h, "list_nat", { table = "foreign" }).error, "EINVAL")
    local listed = priv_call(h, "list_nat", {}).ok
    t.eq(listed.table, true)
    local want = { "bgtap" .. keep.id:sub(1, 10), lost_tap, "bgtapgone1" }
    table.sort(want)
    t.eq(listed.taps, want)

    local asked = h:banger({ "vm", "prune", "--orphans" })
    t.eq(asked.code, 2, "no terminal to confirm on: " .. asked.stderr)
    t.eq(kinds(orphans_check(h).objects), expected, "nothing removed without confirmation")

    local p = h:banger({ "vm", "prune", "--orphans", "-f", "--json" })
    t.eq(p.code, 0, p.stderr)
    local report = banger.json.decode(p.stdout)
    t.eq(kinds(report.removed), expected)
    t.eq(report.failed, {})
    local text = h:banger({ "vm", "prune", "--orphans", "-f" })
    t.eq(text.code, 0, text.stderr)
    t.contains(text.stderr, "no orphaned host objects")
    t.eq(orphans_check(h).status, "ok")

    -- The orphans are gone ...
    t.falsy(alive(lost.pid), "the orphan QEMU is gone")
    local links = h:links()
    for _, tap in ipairs({ lost_tap, "bgtapleak1" }) do
      t.not_contains(links, tap)
    end
    t.falsy(banger.fs.exists(h:runtime() .. "/vms/" .. lost.id))
    t.falsy(banger.fs.exists(h:state() .. "/vms/" .. lost.id))
    local ruleset = h:run({ "nft", "list", "ruleset" }).stdout
    t.not_contains(ruleset, '"' .. lost_tap .. '"')
    t.not_contains(ruleset, '"bgtapgone1"')
    t.not_contains(h:run({ "iptables", "-w", "-S", "DOCKER-USER" }).stdout, "banger:" .. lost_tap)
    -- ... and everything else stayed.
    for _, tap in ipairs({ "fgntap0", "bgtapother1", "bgtapalien1", "bgtapnomark1", "bgtap" .. keep.id:sub(1, 10) }) do
      t.contains(links, tap)
    end
    t.eq(h:run({ "nft", "list", "table", "ip", "foreign" }).stdout, foreign_table)
    t.contains(ruleset, '"bgtap' .. keep.id:sub(1, 10) .. '"', "the running VM's NAT rule")
    local docker = h:run({ "iptables", "-w", "-S", "DOCKER-USER" }).stdout
    t.contains(docker, "docker-own")
    t.contains(docker, "banger:bgtap" .. keep.id:sub(1, 10))
    t.truthy(alive(other_qemu:pid()), "another home's QEMU")
    t.truthy(alive(poser:pid()), "another uid's process naming our paths")
    t.truthy(alive(keep.pid), "the running VM's QEMU")
    t.eq(h:vms()[prefix .. "keep"].alive, true)

    t.eq(h:banger({ "vm", "delete", "-f", prefix .. "keep" }).code, 0)
    t.eq(orphans_check(h).status, "ok")
  end)

  it("as a non-root owner through the helper: an isolated QEMU is stopped through its own QMP socket", function()
    h = hostenv.new("user", "driver = { isolate = true }")
    local prefix = "census" .. banger.sys.getpid()
    local keep, lost = vm(prefix .. "ukeep"), vm(prefix .. "ulost")
    local lost_tap = "bgtap" .. lost.id:sub(1, 10)
    h:sql("DELETE FROM vms WHERE id = ?", lost.id)
    h:run({ "ip", "tuntap", "add", "bgtaprootown", "mode", "tap", "user", "0" })

    -- The owner cannot see which tap an isolated QEMU holds: the tap and its
    -- rules show once that QEMU is gone, and prune's second pass takes them.
    local check = orphans_check(h)
    t.eq(kinds(check.objects), kinds({
      { kind = "runtime_dir", name = h:runtime() .. "/vms/" .. lost.id },
      { kind = "vm_dir", name = h:state() .. "/vms/" .. lost.id },
    }))
    t.eq(priv_call(h, "list_nat", { x = 1 }).error, "EINVAL", "the gate, through the helper")

    local p = h:banger({ "vm", "prune", "--orphans", "-f", "--json" })
    t.eq(p.code, 0, p.stderr)
    t.eq(kinds(banger.json.decode(p.stdout).removed), kinds({
      { kind = "runtime_dir", name = h:runtime() .. "/vms/" .. lost.id },
      { kind = "vm_dir", name = h:state() .. "/vms/" .. lost.id },
      { kind = "tap", name = lost_tap },
      { kind = "nat", name = lost_tap },
    }))
    t.eq(e2e.processes("banger-" .. prefix .. "ulost"), "", "the isolated QEMU quit")
    local links = h:links()
    t.not_contains(links, lost_tap)
    t.contains(links, "bgtaprootown", "root's tap is not the owner's")
    t.contains(links, "bgtap" .. keep.id:sub(1, 10))
    t.eq(h:vms()[prefix .. "ukeep"].alive, true)
    t.eq(h:banger({ "vm", "delete", "-f", prefix .. "ukeep" }).code, 0)
    t.eq(orphans_check(h).status, "ok")
  end)
end)
