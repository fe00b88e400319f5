-- End to end, the QEMU snapshot natives on a real kernel (TCG here): a VM
-- made by `banger vm create` (its RAM in a shared file) is snapshotted with
-- vmm.snapshot, restored twice by vmm.launch{restore=} (both forks map the
-- snapshot's RAM privately), a raw disk is hot-plugged into a paused fork,
-- and the guest agent answers in all three. The recipes on top (vm
-- snapshot, vm fork, ...) have their own specs; this one drives the natives
-- directly. Timings are printed as "[measure]" lines, not asserted.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local vmm = require("banger.native.vmm")
local agent = require("banger.native.agent")
local fs = banger.fs

local function sha(path)
  local r = banger.proc.run({ "sha256sum", path })
  t.eq(r.code, 0, r.stderr)
  return r.stdout:match("^(%x+)")
end

local function arg_after(argv, flag)
  for i, a in ipairs(argv) do
    if a == flag then
      return argv[i + 1]
    end
  end
end

local function must(v, msg, code)
  if v == nil then
    error((code or "?") .. ": " .. tostring(msg), 2)
  end
  return v
end

-- Runs argv in the guest behind `h`, through its agent.
local function exec(h, argv)
  local a = must(agent.connect({ kind = "serial_socket", path = h.agent.path, wait = true, timeout_ms = 60000 }))
  local r = must(a:exec(argv))
  a:close()
  return r
end

-- A VM spec restoring the snapshot in `snap` as `name`, on overlays of its
-- layers, with the source's machine (read from its command line).
local function fork_spec(home, src_h, snap, name, generation)
  local dir = home .. "/" .. name
  must(fs.mkdir(dir, 448))
  must(fs.mkdir(dir .. "/run", 448))
  must(vmm.qcow2_overlay(snap .. "/rootfs.qcow2", dir .. "/root.qcow2", nil, "qcow2"))
  must(vmm.qcow2_overlay(snap .. "/work.ext4", dir .. "/work.qcow2", nil, "raw"))
  local argv = src_h.cmdline
  return {
    id = "0123456789ab", name = name,
    vcpus = math.tointeger(tonumber(arg_after(argv, "-smp"))),
    memory_mib = math.tointeger(tonumber(arg_after(argv, "-m"))),
    kernel = arg_after(argv, "-kernel"), initrd = arg_after(argv, "-initrd"), cmdline = arg_after(argv, "-append"),
    vm_dir = dir, runtime_dir = dir .. "/run", console_log = dir .. "/console.log", accel = "tcg",
    disks = {
      { id = "rootfs", path = dir .. "/root.qcow2", format = "qcow2", root = true },
      { id = "work", path = dir .. "/work.qcow2", format = "qcow2" },
    },
    agent = { kind = "serial_socket" },
    memory_file = snap .. "/ram", memory_shared = false, generation = generation,
    restore = { state = snap .. "/state", ram = "file" },
  }
end

describe("QEMU snapshot natives on a real kernel", function()
  it("snapshot, two restores at once, hot-plug into a fork, snapshot files unchanged", function()
    local home = e2e.home()
    local c = t.banger({ "vm", "create", "src", "--image", "tiny", "--memory", "256MiB", "--accel", "tcg" },
      { home = home, timeout_ms = 180000 })
    t.eq(c.code, 0, c.stderr)
    local v = e2e.vms(home).src
    local vdir = home .. "/.local/state/banger/vms/" .. v.id
    local h = banger.json.decode(fs.read(vdir .. "/handles.json"))
    t.eq(h.memory_file, vdir .. "/ram")
    t.eq(exec(h, { "sh", "-c", "echo before > /root/marker && sync" }).code, 0)

    local snap = home .. "/snap"
    must(fs.mkdir(snap, 448))
    local t0 = banger.sys.monotonic_ms()
    local st = must(vmm.snapshot(h, { state = snap .. "/state", ram = snap .. "/ram", disks = {
      { id = "rootfs", current = vdir .. "/root.qcow2", layer = snap .. "/rootfs.qcow2", next = vdir .. "/root.next.qcow2",
        format = "qcow2" },
      { id = "work", current = vdir .. "/work.ext4", layer = snap .. "/work.ext4", next = vdir .. "/work.next.qcow2",
        format = "raw" },
    } }))
    io.stderr:write(string.format("[measure] snapshot of a 256 MiB guest: pause %d ms (disks %d, state %d, ram copy %d, "
      .. "fsync %d), call %d ms, state %d B, ram data %d B\n", st.pause_ms_so_far, st.disks_ms, st.migrate_ms,
      st.ram_copy_ms, st.sync_ms, banger.sys.monotonic_ms() - t0, st.state_bytes, st.ram_bytes))
    t.eq(st.ram, "file")
    t.truthy(st.state_bytes > 0 and st.state_bytes < 8 * 1024 * 1024, "device state only: " .. st.state_bytes)
    t.eq(must(vmm.status(h)), "paused")
    t.eq(must(vmm.block_files(h)), { rootfs = vdir .. "/root.next.qcow2", work = vdir .. "/work.next.qcow2" })
    local frozen = { snap .. "/state", snap .. "/ram", snap .. "/rootfs.qcow2", snap .. "/work.ext4" }
    local sums = {}
    for _, f in ipairs(frozen) do
      sums[f] = sha(f)
    end

    -- Two restores side by side, each paused until cont.
    local forks = {}
    for i, gen in ipairs({ "6b1c8d0e-8f5e-4c07-9b1a-2d3e4f506172", "6b1c8d0e-8f5e-4c07-9b1a-2d3e4f506173" }) do
      local spec = fork_spec(home, h, snap, "fork" .. i, gen)
      local t1 = banger.sys.monotonic_ms()
      forks[i] = must(vmm.launch("qemu", spec))
      io.stderr:write(string.format("[measure] restore to paused: %d ms\n", banger.sys.monotonic_ms() - t1))
      t.eq(must(vmm.status(forks[i])), "paused")
    end
    for _, fh in ipairs(forks) do
      local maps = fs.read("/proc/" .. fh.pid .. "/maps")
      t.truthy(maps:find(snap .. "/ram", 1, true), "a fork maps the snapshot's RAM")
      t.truthy(maps:match("rw%-p [^\n]*" .. snap:gsub("%p", "%%%0") .. "/ram"), "privately (copy-on-write)")
    end

    -- A raw disk joins the second fork while it is still paused.
    local ws = home .. "/fork2/ws.img"
    local f = assert(io.open(ws, "wb"))
    f:seek("set", 8 * 1024 * 1024 - 1)
    f:write("\0")
    f:close()
    t.eq(must(vmm.hotplug_disk(forks[2], { id = "ws", path = ws, format = "raw", serial = "banger-ws" })), true)
    t.eq(must(vmm.block_files(forks[2])).ws, ws)

    for _, fh in ipairs({ forks[1], forks[2], h }) do
      must(vmm.resume(fh))
      t.eq(must(vmm.status(fh)), "running")
    end
    -- All three answer, and see what the source had written before.
    for _, fh in ipairs({ forks[1], forks[2], h }) do
      local r = exec(fh, { "cat", "/root/marker" })
      t.eq(r.stdout, "before\n")
    end
    t.eq(exec(forks[1], { "sh", "-c", "echo fork1 > /root/only-fork1" }).code, 0)
    t.eq(exec(forks[2], { "cat", "/root/only-fork1" }).code ~= 0, true, "a fork's writes stay its own")
    t.eq(exec(h, { "cat", "/root/only-fork1" }).code ~= 0, true, "and out of the source")
    -- The guest sees the hot-plugged disk by its serial.
    e2e.wait_for(function()
      local r = exec(forks[2], { "sh", "-c", "cat /sys/block/vd*/serial" })
      return r.stdout:find("banger-ws", 1, true) ~= nil
    end, 60000, "the hot-plugged disk in the guest")
    -- The source continues on its new overlays.
    t.eq(exec(h, { "sh", "-c", "echo after > /root/marker2 && sync && cat /root/marker2" }).stdout, "after\n")
    t.eq(must(vmm.block_files(h)).rootfs, vdir .. "/root.next.qcow2")

    for _, file in ipairs(frozen) do
      t.eq(sha(file), sums[file], file .. " unchanged by the restores")
    end
    for _, fh in ipairs(forks) do
      vmm.kill(fh)
    end
    t.eq(t.banger({ "vm", "delete", "src", "--force" }, { home = home, timeout_ms = 60000 }).code, 0)
    t.eq(e2e.processes(home), "")
  end)
end)
