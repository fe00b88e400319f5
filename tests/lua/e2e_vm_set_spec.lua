-- vm set on one real guest (kernel under QEMU TCG, the tiny busybox image)
-- with a tap on a bridge in a network namespace of its own, and an
-- "outside" namespace reachable only through NAT: NAT turned on and off
-- while the VM runs (the guest's traffic goes out, then not; the rules and
-- their record come and go, and a crash's reconcile removes them),
-- cpus/memory/work disk refused while it runs, then set once it is
-- stopped (killed, its work disk not unmounted): after one start the
-- guest's MemTotal, nproc and df show the new values, and e2fsck -fn finds
-- the grown work disk clean.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local MiB = 1024 * 1024

-- The guest fetches the outside's probe page; its body, or "no-route".
local PROBE = "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 10.200.0.2 8080 | tail -n 1 | grep . || echo no-route"

describe("vm set on a real guest", function()
  local world
  after_each(function()
    netns.cleanup(world)
    world = nil
  end)

  it("turns NAT on and off live, refuses the rest while running, and boots with them after a stop", function()
    world = netns.world("through nat\n")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local run = netns.banger(world.host, home)
    local c = run({ "vm", "create", "sv", "--image", "tiny", "--cpus", "1", "--memory", "256MiB", "--work-disk",
      "64MiB" }, 300000)
    t.eq(c.code, 0, c.stderr)
    local function guest(cmd)
      local r = run({ "vm", "exec", "sv", "--", "sh", "-c", cmd })
      t.eq(r.code, 0, cmd .. ": " .. r.stderr)
      return r.stdout
    end
    local function show()
      return banger.json.decode(run({ "vm", "show", "sv", "--json" }).stdout)
    end
    local function nat_rules()
      return netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).stdout
    end
    -- what the VM's row records it holds on the host (banger.host_objects)
    local objects_script = home .. "/objects.lua"
    t.write(objects_script, 'print(banger.json.encode(banger.host_objects.get(banger.vms.require("sv"))))\n')
    local function recorded()
      local o = run({ "run", objects_script })
      t.eq(o.code, 0, o.stderr)
      return banger.json.decode(o.stdout)
    end
    local vm = show()
    local tap = banger.net.tap_name({ id = vm.id })
    t.eq(guest(PROBE), "no-route\n")
    t.eq(recorded().nat, nil)

    -- NAT on, live: recorded like a start's, the rules made, the guest gets out
    local on = run({ "vm", "set", "sv", "--nat", "--json" })
    t.eq(on.code, 0, on.stderr)
    local r = banger.json.decode(on.stdout)
    t.eq({ r.state, r.nat, r.applied, r.pending }, { "running", true, { "nat" }, {} })
    t.eq(recorded().nat, tap)
    t.contains(nat_rules(), tap)
    t.eq(guest(PROBE), "through nat\n")
    t.eq(show().nat, true)

    -- cpus, memory and the work disk need a stop: refused, nothing changed
    local busy = run({ "vm", "set", "sv", "--no-nat", "--cpus", "2", "--memory", "384MiB" })
    t.eq(busy.code, 1)
    t.contains(busy.stderr, "VM 'sv' is running: --cpus, --memory can only change while it is stopped; stop it first")
    t.eq({ show().vcpus, show().memory_mib, show().nat }, { 1, 256, true })
    t.contains(nat_rules(), tap)

    -- NAT off, live: the rules and their record go, the guest is cut off
    local off = run({ "vm", "set", "sv", "--no-nat" })
    t.eq({ off.code, off.stdout }, { 0, "sv: nat off, now\n" }, off.stderr)
    t.eq(recorded().nat, nil)
    t.not_contains(nat_rules(), tap)
    t.eq(guest(PROBE), "no-route\n")

    -- NAT given live, then the hypervisor killed: the record made before
    -- the rules lets the next command's reconcile remove them
    t.eq(run({ "vm", "set", "sv", "--nat" }).code, 0)
    t.contains(nat_rules(), tap)
    guest("echo kept > /root/note && sync")
    t.eq(banger.proc.run({ "kill", "-9", tostring(vm.pid) }).code, 0)
    t.wait_for(function() return not show().alive end, 60000, "the killed VM seen as gone")
    t.eq(show().state, "stopped")
    t.eq(recorded().nat, nil)
    t.not_contains(nat_rules(), tap)

    -- stopped: the new machine from the next start, the work disk grown
    -- now (its filesystem was not unmounted: e2fsck -fp replays the journal)
    local work = vm.dir .. "/work.ext4"
    local features = banger.proc.run({ "dumpe2fs", "-h", work }).stdout:match("\nFilesystem features:%s+([^\n]+)")
    t.contains(features, "needs_recovery")
    local set = run({ "vm", "set", "sv", "--cpus", "2", "--memory", "384MiB", "--work-disk", "160MiB", "--nat",
      "--json" })
    t.eq(set.code, 0, set.stderr)
    r = banger.json.decode(set.stdout)
    t.eq({ r.state, r.applied, r.pending }, { "stopped", {}, { "vcpus", "memory_mib", "work_disk_mib" } })
    t.eq(r.nat, true)
    local fsck = banger.proc.run({ "e2fsck", "-fn", work })
    t.eq(fsck.code, 0, "e2fsck -fn: " .. fsck.stdout .. fsck.stderr)
    local shrink = run({ "vm", "set", "sv", "--work-disk", "64MiB" })
    t.eq(shrink.code, 1)
    t.contains(shrink.stderr, "cannot shrink the work disk of VM 'sv' from 160.0 MiB to 64.0 MiB")

    local s = run({ "vm", "start", "sv" }, 300000)
    t.eq(s.code, 0, s.stderr)
    t.eq(guest("nproc"), "2\n")
    local total = tonumber(guest("cat /proc/meminfo"):match("MemTotal:%s+(%d+) kB")) * 1024
    -- MemTotal is the VM's memory less what the kernel reserves for itself
    t.truthy(total <= 384 * MiB and total >= 320 * MiB, "guest MemTotal " .. total / MiB .. " MiB for 384 MiB")
    local df = guest("df -k /root")
    local kib = tonumber(df:match("\n%S+%s+(%d+)"))
    -- df shows the size less ext4's own metadata (inode tables, journal)
    t.truthy(kib * 1024 <= 160 * MiB and kib * 1024 >= 160 * MiB * 0.85, "df /root: " .. df)
    t.eq(guest("cat /root/note"), "kept\n")
    t.eq(guest(PROBE), "through nat\n")

    t.eq(run({ "vm", "stop", "sv" }, 120000).code, 0)
    fsck = banger.proc.run({ "e2fsck", "-fn", work })
    t.eq(fsck.code, 0, "e2fsck -fn after the guest used it: " .. fsck.stdout .. fsck.stderr)
    t.eq(run({ "vm", "delete", "sv" }).code, 0)
    t.eq(netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).stdout:find(tap, 1, true), nil)
  end)
end)
