-- banger vm set on VMs that never boot (vm create --no-start): its values
-- checked exactly as vm create checks them, the row changed for the next
-- start, the work disk's file and ext4 filesystem grown (checked by e2fsck
-- and dumpe2fs), a grow cut short finished, and the refusals (nothing to
-- change, a smaller work disk) changing nothing; a snapshot's qcow2
-- overlay grows. The VM's lock is held throughout. Running VMs (NAT live, the
-- rest refused) are in e2e_vm_set_spec.lua.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local MiB = 1024 * 1024

local function sh(argv)
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stdout .. r.stderr)
  return r.stdout
end

-- e2fsck finds nothing wrong, and the filesystem is `bytes` long, as is its file.
local function clean_and_sized(path, bytes)
  local r = banger.proc.run({ "e2fsck", "-fn", path })
  t.eq(r.code, 0, "e2fsck -fn " .. path .. ": " .. r.stdout .. r.stderr)
  local h = sh({ "dumpe2fs", "-h", path })
  t.eq(tonumber(h:match("\nBlock count:%s+(%d+)")) * tonumber(h:match("\nBlock size:%s+(%d+)")), bytes,
    path .. ": filesystem size")
  t.eq(banger.fs.stat(path).size, bytes, path .. ": file size")
end

local function virtual_size(qcow2)
  return banger.json.decode(sh({ "qemu-img", "info", "--output=json", qcow2 }))["virtual-size"]
end

local function show(home, name)
  local r = t.banger({ "vm", "show", name, "--json" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

-- The settings part of a vm show, to see that a refusal changed nothing.
local function settings(vm)
  return { vm.vcpus, vm.memory_mib, vm.work_disk_mib, vm.nat }
end

describe("vm set on a VM that is not running", function()
  local home
  before_each(function()
    home = e2e.home()
    local c = t.banger({ "vm", "create", "--no-start", "--image", "tiny", "--cpus", "1", "--memory", "256MiB",
      "--work-disk", "64MiB", "box" }, { home = home })
    t.eq(c.code, 0, c.stderr)
  end)

  it("checks its values as vm create does, and needs one", function()
    local before = show(home, "box")
    local none = t.banger({ "vm", "set", "box" }, { home = home })
    t.eq(none.code, 2, none.stderr)
    t.contains(none.stderr, "nothing to change: give --cpus, --memory, --work-disk, --nat or --no-nat")
    -- each bad value: the same message as vm create's, exit 2 (usage)
    for _, bad in ipairs({ { "--cpus", "0" }, { "--cpus", "33" }, { "--memory", "64MiB" }, { "--memory", "lots" },
      { "--work-disk", "32MiB" }, { "--work-disk", "100.5MiB" }, { "--memory", "300000001" } }) do
      local create = t.banger({ "vm", "create", "--no-start", "--image", "tiny", bad[1], bad[2], "other" },
        { home = home })
      local set = t.banger({ "vm", "set", "box", bad[1], bad[2] }, { home = home })
      t.eq({ create.code, set.code }, { 2, 2 }, bad[1] .. " " .. bad[2] .. ": " .. create.stderr .. set.stderr)
      -- the message without the hint, which names the command
      local why
      for line in create.stderr:gmatch("[^\n]+") do
        if not line:match("^banger: warning: ") then
          why = line:match("^banger: (.-) %(see") or line:match("^banger: (.*)")
        end
      end
      t.truthy(why and #why > 10, create.stderr)
      t.contains(set.stderr, why, bad[1] .. " " .. bad[2])
    end
    -- all problems at once, as create reports them
    local many = t.banger({ "vm", "set", "box", "--cpus", "0", "--memory", "1MiB" }, { home = home })
    t.eq(many.code, 2)
    t.contains(many.stderr, "--cpus 0: ")
    t.contains(many.stderr, "; --memory 1MiB: must be at least 128MiB")
    local missing = t.banger({ "vm", "set", "nosuch", "--cpus", "2" }, { home = home })
    t.eq(missing.code, 1)
    t.contains(missing.stderr, "no VM named 'nosuch'")
    t.eq(show(home, "box"), before)
    t.eq(e2e.vms(home).other, nil)
  end)

  it("changes the row for the next start and grows the work disk's file and filesystem", function()
    local dir = show(home, "box").dir
    local work = dir .. "/work.ext4"
    clean_and_sized(work, 64 * MiB)
    t.write(home .. "/note", "kept\n")
    sh({ "debugfs", "-w", "-R", "write " .. home .. "/note /note", work })
    local r = t.banger({ "vm", "set", "box", "--cpus", "3", "--memory", "512MiB", "--work-disk", "128MiB", "--nat",
      "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local out = json_doc.conforms("vm set", r.stdout)
    t.eq(out, { name = "box", state = "created", vcpus = 3, memory_mib = 512, work_disk_mib = 128, nat = true,
      applied = {}, pending = { "vcpus", "memory_mib", "work_disk_mib", "nat" } })
    local vm = show(home, "box")
    t.eq(settings(vm), { 3, 512, 128, true })
    t.eq(vm.state, "created")
    clean_and_sized(work, 128 * MiB)
    t.eq(sh({ "debugfs", "-R", "cat /note", work }), "kept\n")

    -- the same values again: nothing to do
    local again = t.banger({ "vm", "set", "box", "--cpus", "3", "--nat" }, { home = home })
    t.eq({ again.code, again.stdout }, { 0, "box: nothing changed\n" })
    local text = t.banger({ "vm", "set", "box", "--no-nat", "--cpus", "2" }, { home = home })
    t.eq({ text.code, text.stdout }, { 0, "box: cpus 2, nat off, from its next start\n" }, text.stderr)
    t.eq(settings(show(home, "box")), { 2, 512, 128, false })
  end)

  it("refuses a smaller work disk, changing nothing; grows a snapshot's overlay, not the layer below", function()
    local dir = show(home, "box").dir
    local work = dir .. "/work.ext4"
    t.eq(t.banger({ "vm", "set", "box", "--work-disk", "128MiB" }, { home = home }).code, 0)
    local before = show(home, "box")
    local shrink = t.banger({ "vm", "set", "box", "--cpus", "2", "--work-disk", "64MiB" }, { home = home })
    t.eq(shrink.code, 1)
    t.eq(shrink.stderr, "banger: cannot shrink the work disk of VM 'box' from 128.0 MiB to 64.0 MiB: "
      .. "a work disk only grows\n")
    t.eq(show(home, "box"), before)
    clean_and_sized(work, 128 * MiB)

    -- after a snapshot a VM works on a qcow2 overlay over the frozen layer:
    -- the overlay grows, the layer below does not, the guest's next boot
    -- grows the filesystem (e2e_growfs_spec)
    local overlay = dir .. "/work.qcow2"
    sh({ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", work, overlay })
    local r = t.banger({ "vm", "set", "box", "--memory", "384MiB", "--work-disk", "256MiB" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(show(home, "box").work_disk_mib, 256)
    t.eq(virtual_size(overlay), 256 * MiB)
    clean_and_sized(work, 128 * MiB)
    sh({ "qemu-img", "check", "-q", overlay })
    shrink = t.banger({ "vm", "set", "box", "--work-disk", "128MiB" }, { home = home })
    t.eq(shrink.code, 1)
    t.eq(virtual_size(overlay), 256 * MiB)
    t.eq(show(home, "box").memory_mib, 384)
  end)

  it("finishes a grow cut short after the file was extended", function()
    local work = show(home, "box").dir .. "/work.ext4"
    -- what a banger killed between extending the file and resize2fs leaves
    sh({ "truncate", "-s", "192M", work })
    t.eq(show(home, "box").work_disk_mib, 64)
    local r = t.banger({ "vm", "set", "box", "--work-disk", "192MiB" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(show(home, "box").work_disk_mib, 192)
    clean_and_sized(work, 192 * MiB)
  end)

  it("waits for the VM's lock and changes the row only once it has it", function()
    local ready, go = home .. "/locked", home .. "/go"
    local holder_script = home .. "/hold.lua"
    t.write(holder_script, table.concat({
      'local l <close> = banger.vms.lock("box")',
      'banger.fs.write_atomic(' .. string.format("%q", ready) .. ', "", 420)',
      'while not banger.fs.exists(' .. string.format("%q", go) .. ') do banger.sys.sleep_ms(20) end',
      'print(banger.vms.require("box").vcpus)',
    }, "\n"))
    local holder_out = home .. "/holder.out"
    local holder = t.spawn({ t.bin(), "run", holder_script, env = t.env(home), cwd = home,
      stdout = { file = holder_out, append = false } })
    t.wait_for(function() return banger.fs.exists(ready) end, 60000, "the lock holder")
    local set = t.spawn({ t.bin(), "vm", "set", "box", "--cpus", "4", env = t.env(home), cwd = home,
      stdout = "null", stderr = "null" })
    -- Once vm set has the lock file open it is taking the lock (fs.lock
    -- polls flock so Ctrl-C reaches it): it cannot change the row before
    -- the holder lets go.
    local lock_file = home .. "/.local/state/banger/locks/vm-box.lock"
    -- the native calls: a descriptor may close between the listing and the
    -- readlink, which is then nil rather than an error
    local nfs = require("banger.native.fs")
    t.wait_for(function()
      for _, fd in ipairs(nfs.list("/proc/" .. set:pid() .. "/fd") or {}) do
        if nfs.readlink("/proc/" .. set:pid() .. "/fd/" .. fd) == lock_file then
          return true
        end
      end
    end, 60000, "vm set opening the VM's lock file")
    t.eq(show(home, "box").vcpus, 1)
    t.write(go, "")
    t.eq(holder:wait(60000).code, 0)
    t.eq(t.read(holder_out), "1\n", "the row was unchanged while the holder had the lock")
    t.eq(set:wait(60000).code, 0)
    t.eq(show(home, "box").vcpus, 4)
  end)

  it("is listed by banger help", function()
    local r = t.banger({ "help" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.truthy(r.stdout:match("\n%s+vm set%s+change a VM's cpus, memory, work disk size or NAT"), r.stdout)
  end)
end)
