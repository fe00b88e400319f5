-- The refresh_work_disk step of banger.vm.start, up to the launch and no
-- further (no guest boots here; e2e_provision_spec.lua boots one): a
-- recipe's own hook replaces the default, a failure leaves the VM as it
-- was with one clear line, a qcow2 work disk is skipped with a warning,
-- create and restores never refresh, and the "still running" reminder
-- says nothing for a VM that does not run.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local function config(home, file_sync)
  t.write(home .. "/.config/banger/config.lua",
    'return { network = { mode = "off" }, file_sync = {' .. (file_sync or "") .. "} }\n")
end

local function created(home, name)
  local r = t.banger({ "vm", "create", "--no-start", "--image", "tiny", "--work-disk", "64MiB", name }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(t.banger({ "vm", "show", name, "--json" }, { home = home }).stdout)
end

local function script(home, body)
  t.write(home .. "/s.lua", body)
  return t.banger({ "run", home .. "/s.lua" }, { home = home })
end

describe("vm start writes the work disk first", function()
  it("a recipe's refresh_work_disk replaces the default; its failure leaves the VM created, nothing launched", function()
    local home = e2e.home()
    t.write(home .. "/synced", "from the host")
    config(home, '{ host = "~/synced", guest = "~/synced" }')
    local vm = created(home, "box")
    local r = script(home, [[
local seen
local ok, e = pcall(banger.vm.start, "box", { hooks = { refresh_work_disk = function(row, disk)
  seen = row.name .. " " .. disk.format .. " " .. disk.path
  error("the recipe's own step broke", 0)
end } })
print(seen)
print(e.code)
print(e.message)
print(banger.vms.require("box").state)
]])
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "box raw " .. vm.dir .. "/work.ext4\nEPROVISION\n"
      .. "VM 'box' not started: writing its work disk (SSH key, git identity, file_sync) failed: the recipe's own step broke\n"
      .. "created\n")
    t.falsy(banger.fs.exists(vm.dir .. "/handles.json"), "nothing was launched")
    local img <close> = banger.ext4.open(vm.dir .. "/work.ext4")
    t.eq(img:read("/synced"), "from the host", "create wrote it; the replaced default did not run again")
  end)

  it("a real failure (the disk is full) fails vm start with one line and leaves the VM stopped", function()
    local home = e2e.home()
    config(home)
    local vm = created(home, "full")
    t.eq(banger.proc.run({ "truncate", "-s", "96M", home .. "/big" }).code, 0)
    config(home, '{ host = "~/big", guest = "~/big" }')
    local r = t.banger({ "vm", "start", "full" }, { home = home })
    t.eq(r.code ~= 0, true, r.stderr)
    t.contains(r.stderr, "\nbanger: VM 'full' not started: writing its work disk (SSH key, git identity, file_sync) failed: "
      .. "allocate 100663296 bytes: Could not allocate block in ext2 filesystem\n")
    t.eq(e2e.vms(home).full.state, "created")
    t.falsy(banger.fs.exists(vm.dir .. "/handles.json"))
    t.eq(e2e.processes(home), "")
    t.eq(banger.proc.run({ "e2fsck", "-fn", vm.dir .. "/work.ext4" }).code, 0, "the half-written disk is consistent")
  end)

  it("skips a qcow2 work disk with a warning; create and restores never refresh; no reminder for a stopped VM", function()
    local home = e2e.home()
    t.write(home .. "/synced", "v1")
    config(home, '{ host = "~/synced", guest = "~/synced" }')
    local vm = created(home, "snapped")
    -- what a snapshot leaves: the work disk becomes an overlay over work.ext4
    t.eq(banger.proc.run({ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", vm.dir .. "/work.ext4",
      vm.dir .. "/work.qcow2" }).code, 0)
    t.write(home .. "/synced", "v2")
    local r = script(home, [[
local stop = { before_launch = function(_, spec)
  for _, d in ipairs(spec.disks) do
    if d.id == "work" then print("launch with " .. d.format) end
  end
  error("stop before the boot", 0)
end }
print(pcall(banger.vm.start, "snapped", { hooks = stop }))
local called = false
local ok, e = pcall(banger.vm.create, { name = "fresh", image = "tiny", work_disk = "64MiB" }, { hooks = {
  before_launch = stop.before_launch,
  refresh_work_disk = function() called = true end,
} })
print(e, "refreshed during create: " .. tostring(called))
do -- a restore: start_locked as create_from calls it
  local lock <close> = banger.vms.lock("snapped")
  called = false
  print(pcall(banger.vm.start_locked, banger.vms.require("snapped"), { restore = { state = "/nonexistent" },
    hooks = { before_launch = stop.before_launch, refresh_work_disk = function() called = true end } }))
  print("refreshed during a restore: " .. tostring(called))
end
print(banger.vm.remind_running("snapped"), banger.vm.remind_running("nonexistent"))
]])
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "launch with qcow2\nfalse\tstop before the boot\n"
      .. "launch with raw\nstop before the boot\trefreshed during create: false\n"
      .. "launch with qcow2\nfalse\tstop before the boot\nrefreshed during a restore: false\nnil\tnil\n")
    t.contains(r.stderr, "VM snapped: its work disk is a qcow2 overlay (it was snapshotted or restored), "
      .. "so file_sync, the SSH key and the git identity were not written again at this start")
    t.not_contains(r.stderr, "still running")
    local img <close> = banger.ext4.open(vm.dir .. "/work.ext4")
    t.eq(img:read("/synced"), "v1", "the overlay's base layer is never written")
    t.eq(t.banger({ "vm", "delete", "-f", "snapped" }, { home = home }).code, 0)
  end)
end)
