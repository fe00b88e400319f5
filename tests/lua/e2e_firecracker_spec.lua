-- The whole VM lifecycle through the CLI with the firecracker driver, against
-- the fake firecracker (the real binary cannot be installed here). The
-- fake's vsock forwards to a real banger-agent running on the host, so
-- exec, the handshake and stop go through every layer banger has.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local fake = assert(os.getenv("BANGER_BUILD_DIR")) .. "/tests/fake-firecracker/fake-firecracker"

local function setup()
  local home = e2e.home()
  -- network off, as in every test home: no taps or bridges on the host's own network
  t.write(home .. "/.config/banger/config.lua",
    string.format("return { network = { mode = 'off' }, driver = { name = 'firecracker', firecracker_bin = %q } }\n", fake))
  local sock = home .. "/agent.sock"
  local agent = t.spawn({ e2e.agent_bin(), "--unix", sock })
  e2e.wait_for(function() return banger.fs.exists(sock) end, 5000, "the agent socket")
  return home, agent, { FAKE_FC_VSOCK_BACKEND = sock, FAKE_FC_RECORD = home .. "/fc-calls.jsonl" }
end

describe("firecracker driver through the CLI (fake firecracker)", function()
  it("create, exec, stop, delete", function()
    local home, agent, env = setup()
    local c = t.banger({ "vm", "create", "f1", "--image", "tiny", "--cpus", "2", "--memory", "512MiB" },
      { home = home, env = env })
    t.eq(c.code, 0, c.stderr)
    t.contains(c.stderr, "start: InstanceStart")
    local v = e2e.vms(home).f1
    t.eq(v.driver, "firecracker")
    t.eq(v.state, "running")
    t.eq(v.alive, true)
    -- The raw root disk is the VM's disk size (the image's filesystem is
    -- grown into it by the initramfs at boot, as under QEMU).
    t.eq(banger.fs.stat(v.dir .. "/root.img").size, v.disk_mib * 1024 * 1024)

    -- What banger asked firecracker for, as the fake recorded it.
    local calls = {}
    for line in t.read(home .. "/fc-calls.jsonl"):gmatch("[^\n]+") do
      local call = banger.json.decode(line)
      calls[call.method .. " " .. call.path] = call
    end
    t.eq(calls["PUT /machine-config"].body.vcpu_count, 2)
    t.eq(calls["PUT /machine-config"].body.mem_size_mib, 512)
    t.contains(calls["PUT /boot-source"].body.boot_args, "banger.name=f1")
    t.contains(calls["PUT /boot-source"].body.boot_args, "i8042.noaux")
    t.eq(calls["PUT /drives/rootfs"].body.is_root_device, true)
    t.eq(calls["PUT /drives/work"].body.is_root_device, false)
    t.eq(calls["PUT /network-interfaces/eth0"], nil)
    t.truthy(calls["PUT /vsock"].body.guest_cid >= 3)
    t.truthy(calls["PUT /actions"], "InstanceStart")

    local r = t.banger({ "vm", "exec", "f1", "--", "sh", "-c", "echo via-vsock; exit 3" }, { home = home, env = env })
    t.eq(r.code, 3)
    t.eq(r.stdout, "via-vsock\n")

    local s = t.banger({ "vm", "stop", "f1" }, { home = home, env = env })
    t.eq(s.code, 0, s.stderr)
    t.eq(e2e.vms(home).f1.state, "stopped")
    t.eq(t.banger({ "vm", "delete", "f1" }, { home = home }).code, 0)
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
    t.eq(e2e.processes(fake .. " --api-sock " .. home), "")
    agent:kill(9)
    agent:wait()
  end)

  it("a firecracker that rejects the configuration fails the create cleanly", function()
    local home, agent, env = setup()
    env.FAKE_FC_FAIL = "/drives/rootfs"
    local c = t.banger({ "vm", "create", "f2", "--image", "tiny" }, { home = home, env = env })
    t.eq(c.code, 1)
    t.contains(c.stderr, "firecracker: PUT /drives/rootfs")
    t.eq(e2e.vms(home).f2, nil)
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
    t.eq(e2e.processes(fake .. " --api-sock " .. home), "")
    agent:kill(9)
    agent:wait()
  end)

  it("vm snapshot pauses, saves and resumes a firecracker VM; the snapshot is listed and deleted", function()
    local home, agent, env = setup()
    t.eq(t.banger({ "vm", "create", "f3", "--image", "tiny" }, { home = home, env = env }).code, 0)
    local snap = t.banger({ "vm", "snapshot", "f3", "--name", "s1", "--json" }, { home = home, env = env })
    t.eq(snap.code, 0, snap.stderr)
    local out = banger.json.decode(snap.stdout)
    t.eq(out.snapshot.name, "s1")
    t.truthy(out.pause_ms >= 0)
    local v = e2e.vms(home).f3
    t.eq(v.state, "running")
    local r = t.banger({ "vm", "exec", "f3", "--", "echo", "after" }, { home = home, env = env })
    t.eq(r.stdout, "after\n")

    -- What the driver asked for, in order, and the files it left.
    local seq = {}
    for line in t.read(home .. "/fc-calls.jsonl"):gmatch("[^\n]+") do
      local call = banger.json.decode(line)
      if call.path == "/vm" or call.path == "/snapshot/create" then
        seq[#seq + 1] = call.method .. " " .. call.path .. " " .. (call.body.state or call.body.snapshot_type)
      end
    end
    t.eq(seq, { "PATCH /vm Paused", "PUT /snapshot/create Full", "PATCH /vm Resumed" })
    local dir = out.snapshot.dir
    local state = banger.json.decode(t.read(dir .. "/state"))
    t.eq(state.drives[1].path_on_host, "root.img")  -- relative: a restore finds its own copy
    t.eq(banger.fs.stat(dir .. "/ram").size, v.memory_mib * 1024 * 1024)
    t.eq(banger.fs.stat(dir .. "/rootfs.img").size, banger.fs.stat(v.dir .. "/root.img").size)
    t.truthy(banger.fs.exists(dir .. "/work.ext4"))

    local list = t.banger({ "snapshot", "list", "--json" }, { home = home })
    t.eq(list.code, 0, list.stderr)
    t.contains(list.stdout, '"s1"')
    t.eq(t.banger({ "vm", "delete", "f3", "--force" }, { home = home, env = env }).code, 0)
    local del = t.banger({ "snapshot", "delete", "s1" }, { home = home })
    t.eq(del.code, 0, del.stderr)
    t.eq(banger.fs.exists(dir), false)
    t.eq(e2e.processes(fake .. " --api-sock " .. home), "")
    agent:kill(9)
    agent:wait()
  end)
end)
