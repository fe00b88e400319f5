-- Pause, resume, snapshot and restore of firecracker VMs through
-- banger.native.vmm, the API the snapshot recipes use, against the fake
-- firecracker (tests/fake-firecracker; the real binary cannot run here).
local vmm = require("banger.native.vmm")
local fs = banger.fs
local json = banger.json

local fake = assert(os.getenv("BANGER_BUILD_DIR")) .. "/tests/fake-firecracker/fake-firecracker"

local function head(path, n)
  local f = assert(io.open(path, "rb"))
  local s = f:read(n)
  f:close()
  return s
end

-- A VM spec over fresh directories, its disks in its own vm_dir as banger
-- lays them out.
local function vm_spec(root, name, id)
  local dir, run = root .. "/vm-" .. name, root .. "/run-" .. name
  fs.mkdir(dir, 448)
  assert(fs.mkdir_private(run))
  return {
    id = id, name = name, vcpus = 2, memory_mib = 128,
    kernel = root .. "/vmlinux", cmdline = "console=ttyS0 reboot=k panic=-1",
    binary = fake, vm_dir = dir, runtime_dir = run,
    disks = {
      { id = "rootfs", path = dir .. "/root.img", root = true },
      { id = "work", path = dir .. "/work.ext4" },
    },
    nics = { { id = "eth0", tap = "tap-" .. name, mac = "02:fc:00:00:00:01" } },
    agent = { kind = "vsock_uds", cid = 3, port = 52 },
  }
end

local function source(root)
  t.write(root .. "/vmlinux", "not a kernel")
  local spec = vm_spec(root, "src", "5a1c0001")
  t.write(spec.vm_dir .. "/root.img", string.rep("r", 8192), 384)
  t.write(spec.vm_dir .. "/work.ext4", string.rep("w", 4096), 384)
  return spec
end

local function files_for(spec, snap)
  return {
    state = snap .. "/state", ram = snap .. "/ram",
    disks = {
      { id = "rootfs", current = spec.vm_dir .. "/root.img", layer = snap .. "/rootfs.img", next = spec.vm_dir .. "/root.next" },
      { id = "work", current = spec.vm_dir .. "/work.ext4", layer = snap .. "/work.img", next = spec.vm_dir .. "/work.next" },
    },
  }
end

-- A fork of `snap`: new id, dirs and tap, the snapshot's layers copied as its disks.
local function fork_spec(root, snap, name, id)
  local spec = vm_spec(root, name, id)
  t.write(spec.vm_dir .. "/root.img", fs.read(snap .. "/rootfs.img"), 384)
  t.write(spec.vm_dir .. "/work.ext4", fs.read(snap .. "/work.img"), 384)
  spec.restore = { state = snap .. "/state", ram = "file" }
  spec.memory_file = snap .. "/ram"
  return spec
end

-- The requests the fake answered, from its log (firecracker.log in vm_dir).
local function requests(spec)
  local out = {}
  for method, path in t.read(spec.vm_dir .. "/firecracker.log"):gmatch('received a (%u+) request on "([^"]+)"') do
    out[#out + 1] = method .. " " .. path
  end
  return out
end

local function snapshot_of_running_source(root)
  local spec = source(root)
  local h = assert(vmm.launch("firecracker", spec))
  local snap = root .. "/snap"
  fs.mkdir(snap, 448)
  local stats = assert(vmm.snapshot(h, files_for(spec, snap)))
  return spec, h, snap, stats
end

describe("firecracker pause, snapshot and restore through banger.native.vmm", function()
  it("pause and resume", function()
    local root = t.tmpdir()
    local h = assert(vmm.launch("firecracker", source(root)))
    t.eq(vmm.status(h), "running")
    assert(vmm.pause(h))
    t.eq(vmm.status(h), "paused")
    assert(vmm.resume(h))
    t.eq(vmm.status(h), "running")
    t.eq(vmm.shutdown(h, 5000), true)
    t.eq(vmm.status(h), "stopped")
  end)

  it("vmm.snapshot pauses the VM, writes state, RAM and disk layers, and leaves it paused", function()
    local root = t.tmpdir()
    local spec, h, snap, stats = snapshot_of_running_source(root)
    local log = requests(spec)
    t.eq({ table.unpack(log, #log - 3) }, { "GET /vm/config", "GET /", "PATCH /vm", "PUT /snapshot/create" })
    t.eq(vmm.status(h), "paused")

    -- What the fake wrote: its state file (the drives recorded relative to
    -- the VM dir) and a RAM file of the guest's size.
    local state = json.decode(t.read(snap .. "/state"))
    t.eq(state.fake_firecracker_snapshot, 1)
    t.eq(state.saved_by, "5a1c0001")
    t.eq(state.drives[1].path_on_host, "root.img")
    t.eq(fs.stat(snap .. "/ram").size, 128 * 1024 * 1024)
    t.contains(head(snap .. "/ram", 64), 'FAKE-FIRECRACKER-MEMORY\n{"booted_by":"5a1c0001"')
    t.eq(t.read(snap .. "/rootfs.img"), string.rep("r", 8192))
    t.eq(t.read(snap .. "/work.img"), string.rep("w", 4096))
    t.eq(fs.exists(spec.vm_dir .. "/root.next"), false)  -- `next` is QEMU's; firecracker keeps its files

    t.eq(stats.ram, "file")
    t.eq(stats.state_bytes, fs.stat(snap .. "/state").size)
    t.eq(stats.ram_bytes, fs.stat(snap .. "/ram").blocks_bytes)
    t.truthy(stats.pause_ms_so_far >= stats.create_ms + stats.disks_ms, "pause_ms_so_far covers the create and the copies")
    t.truthy(stats.create_ms > 0, "create_ms")
    t.eq(#stats.disks, 2)
    t.eq(stats.disks[1].id, "rootfs")
    t.eq(stats.disks[1].layer, snap .. "/rootfs.img")
    t.truthy(stats.disks[1].method == "reflink" or stats.disks[1].method == "sparse_copy", stats.disks[1].method)
    t.eq(type(stats.disks[1].ms), "number")

    assert(vmm.resume(h))
    t.eq(vmm.status(h), "running")
    t.eq(vmm.shutdown(h, 5000), true)
  end)

  it("vmm.launch with spec.restore loads into a fresh firecracker, paused, on the fork's own files", function()
    local root = t.tmpdir()
    local src, sh, snap = snapshot_of_running_source(root)
    t.eq(vmm.shutdown(sh, 5000), true)
    fs.remove_tree(src.vm_dir)  -- the snapshot needs nothing of its source

    local spec = fork_spec(root, snap, "a", "f0000a")
    local stages = {}
    local h = assert(vmm.launch("firecracker", spec, function(name) stages[#stages + 1] = name end))
    t.eq(stages, { "launch", "configure", "restore" })
    -- Load is the first configuration: no machine-config, boot-source, drives.
    -- (the log starts with the logger, so PUT /logger itself is not in it)
    t.eq(requests(spec), { "PUT /metrics", "PUT /snapshot/load", "GET /vm/config" })
    t.eq(vmm.status(h), "paused")
    t.eq(h.control_socket, spec.runtime_dir .. "/fc.sock")
    t.eq(h.agent.path, spec.runtime_dir .. "/fc.vsock")
    t.eq(fs.stat(spec.runtime_dir .. "/fc.vsock").type, "socket")
    t.eq(vmm.block_files(h), { rootfs = spec.vm_dir .. "/root.img", work = spec.vm_dir .. "/work.ext4" })

    assert(vmm.resume(h))
    t.eq(vmm.status(h), "running")
    t.eq(vmm.shutdown(h, 5000), true)
  end)

  it("two forks run beside their running source, each on its own disks", function()
    local root = t.tmpdir()
    local src, sh, snap = snapshot_of_running_source(root)
    assert(vmm.resume(sh))
    local a = assert(vmm.launch("firecracker", fork_spec(root, snap, "a", "f0000a")))
    local b = assert(vmm.launch("firecracker", fork_spec(root, snap, "b", "f0000b")))
    assert(vmm.resume(a))
    assert(vmm.resume(b))
    for _, h in ipairs({ sh, a, b }) do
      t.eq(vmm.status(h), "running")
    end
    t.eq(vmm.block_files(sh).rootfs, src.vm_dir .. "/root.img")
    t.eq(vmm.block_files(a).rootfs, root .. "/vm-a/root.img")
    t.eq(vmm.block_files(b).rootfs, root .. "/vm-b/root.img")
    for _, h in ipairs({ sh, a, b }) do
      t.eq(vmm.shutdown(h, 5000), true)
    end
  end)

  it("refusals: missing files, an unknown interface, a drive the snapshot lacks; nothing left running", function()
    local root = t.tmpdir()
    local _, sh, snap = snapshot_of_running_source(root)
    t.eq(vmm.shutdown(sh, 5000), true)
    local load = "firecracker: PUT /snapshot/load: Load snapshot error: Failed to restore from snapshot: "
    local cases = {
      { function(s) s.restore.state = snap .. "/gone" end,
        load .. "Failed to get snapshot state from file: Failed to open snapshot file: No such file or directory (os error 2)" },
      { function(s) s.memory_file = snap .. "/gone" end,
        load .. "Failed to load guest memory: Error creating guest memory from file: Failed to load guest memory: "
          .. "No such file or directory (os error 2)" },
      { function(s) fs.remove(s.vm_dir .. "/root.img") end,
        load .. "Failed to build microVM from snapshot: Failed to restore devices: Error restoring MMIO devices: Block: "
          .. "Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) root.img" },
      { function(s) s.nics[1].id = "eth1" end,
        load .. "Failed to get snapshot state from file: Unknown Network Device." },
    }
    for i, c in ipairs(cases) do
      local spec = fork_spec(root, snap, "r" .. i, "f00" .. i)
      c[1](spec)
      local h, err, code = vmm.launch("firecracker", spec)
      t.eq(h, nil)
      t.eq(code, "EHYPERVISOR")
      t.contains(err, c[2])
      t.eq(fs.exists(spec.runtime_dir .. "/fc.sock"), false)
    end

    local spec = fork_spec(root, snap, "x", "f000x")
    t.write(spec.vm_dir .. "/extra.img", "x")
    spec.disks[#spec.disks + 1] = { id = "extra", path = spec.vm_dir .. "/extra.img" }
    local h, err, code = vmm.launch("firecracker", spec)
    t.eq(h, nil)
    t.eq(code, "EINVAL")
    t.contains(err, "drive 'extra' is not in the snapshot")

    spec = fork_spec(root, snap, "y", "f000y")
    spec.restore.ram = "stream"
    h, err, code = vmm.launch("firecracker", spec)
    t.eq(code, "EINVAL")
    t.contains(err, "restore.ram must be 'file'")
    t.eq(fs.exists(spec.vm_dir .. "/firecracker.log"), false)  -- refused before anything was spawned
  end)

  it("snapshot refusals: no RAM file, a disk that is not the VM's; the VM keeps running", function()
    local root = t.tmpdir()
    local spec = source(root)
    local h = assert(vmm.launch("firecracker", spec))
    local snap = root .. "/snap"
    fs.mkdir(snap, 448)
    local files = files_for(spec, snap)
    files.ram = nil
    local ok, err, code = vmm.snapshot(h, files)
    t.eq(ok, nil)
    t.eq(code, "EINVAL")
    t.contains(err, "needs a RAM file")
    files = files_for(spec, snap)
    files.disks[2] = nil
    ok, err, code = vmm.snapshot(h, files)
    t.eq(code, "EINVAL")
    t.contains(err, "writable drive 'work'")
    t.eq(vmm.status(h), "running")
    t.eq(fs.exists(snap .. "/state"), false)
    t.eq(vmm.shutdown(h, 5000), true)
  end)

  it("hot-plug is not supported: ENOTSUP, the VM untouched", function()
    local root = t.tmpdir()
    local h = assert(vmm.launch("firecracker", source(root)))
    local ok, err, code = vmm.hotplug_disk(h, { id = "ws", path = root .. "/vm-src/work.ext4", format = "raw", serial = "banger-ws" })
    t.eq(ok, nil)
    t.eq(code, "ENOTSUP")
    t.contains(err, "cannot hot-plug disk 'ws'")
    t.eq(vmm.status(h), "running")
    t.eq(vmm.shutdown(h, 5000), true)
  end)

  it("a cold launch refuses a RAM file: firecracker boots on anonymous memory", function()
    local root = t.tmpdir()
    local spec = source(root)
    spec.memory_file = root .. "/ram"
    local h, err, code = vmm.launch("firecracker", spec)
    t.eq(h, nil)
    t.eq(code, "EINVAL")
    t.contains(err, "memory_file is for restores only")
  end)
end)
