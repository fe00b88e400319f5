-- End to end: a real kernel booted by the QEMU driver (TCG here), the real
-- agent in the guest, the lifecycle through the CLI.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

describe("vm lifecycle on a real kernel", function()
  it("create, exec, stop, delete (on a kernel pulled as a bundle)", function()
    -- The kernel came through kernel export and kernel pull over HTTP
    -- (e2e_kernel_pull_spec.lua checks the files): this boot is its test.
    local home = e2e.home_from_bundle()
    t.eq(banger.json.decode(t.banger({ "kernel", "show", "debian-cloud", "--json" }, { home = home }).stdout).source_kind,
      "bundle")
    local c = t.banger({ "vm", "create", "t1", "--image", "tiny", "--memory", "256MiB", "--accel", "tcg" },
      { home = home, timeout_ms = 180000 })
    t.eq(c.code, 0, c.stderr)
    for _, stage in ipairs({ "allocate", "disks", "kernel args", "launch", "wait for agent" }) do
      t.contains(c.stderr, "] " .. stage)
    end
    local v = e2e.vms(home).t1
    t.eq(v.state, "running")

    local u = t.banger({ "vm", "exec", "t1", "--", "uname", "-r" }, { home = home })
    t.eq(u.code, 0, u.stderr)
    t.truthy(u.stdout:match("^%d+%.%d+%.%d+%-%d+%-cloud%-amd64\n$"), "guest kernel version: " .. u.stdout)

    t.eq(t.banger({ "vm", "exec", "t1", "--", "sh", "-c", "exit 7" }, { home = home }).code, 7)
    local h = t.banger({ "vm", "exec", "t1", "--", "hostname" }, { home = home })
    t.eq(h.stdout, "t1\n")
    local w = t.banger({ "vm", "exec", "t1", "--", "sh", "-c", "mount | grep ' /root '" }, { home = home })
    t.contains(w.stdout, "/dev/vdb on /root type ext4", "the work disk is mounted at /root")

    local s = t.banger({ "vm", "stop", "t1" }, { home = home, timeout_ms = 60000 })
    t.eq(s.code, 0, s.stderr)
    t.contains(s.stderr, "t1: stopped", "a clean shutdown through the agent")
    t.eq(e2e.vms(home).t1.state, "stopped")

    local show = banger.json.decode(t.banger({ "vm", "show", "t1", "--json" }, { home = home }).stdout)
    t.eq(show.alive, false)

    t.eq(t.banger({ "vm", "delete", "t1" }, { home = home }).code, 0)
    t.eq(e2e.vms(home).t1, nil)
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
    t.eq(e2e.list(home .. "/run/banger/vms"), {})
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)

  it("restarts a stopped VM with its work disk kept", function()
    local home = e2e.home()
    t.eq(t.banger({ "vm", "create", "t2", "--image", "tiny", "--memory", "256MiB" }, { home = home, timeout_ms = 180000 }).code, 0)
    t.eq(t.banger({ "vm", "exec", "t2", "--", "sh", "-c", "echo kept > /root/note" }, { home = home }).code, 0)
    t.eq(t.banger({ "vm", "restart", "t2" }, { home = home, timeout_ms = 180000 }).code, 0)
    local r = t.banger({ "vm", "exec", "t2", "--", "cat", "/root/note" }, { home = home })
    t.eq(r.stdout, "kept\n")
    local d = t.banger({ "vm", "delete", "t2" }, { home = home })
    t.eq(d.code, 1, "a running VM needs --force")
    t.contains(d.stderr, "is running")
    t.eq(t.banger({ "vm", "delete", "--force", "t2" }, { home = home }).code, 0)
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)

describe("crashes and interrupts", function()
  local function spawn_banger(home, args)
    local argv = { t.bin() }
    for _, a in ipairs(args) do
      argv[#argv + 1] = a
    end
    argv.env = t.env(home)
    argv.cwd = home
    argv.stdout = "null"
    argv.stderr = "pipe"
    return t.spawn(argv)
  end

  it("kill -9 during create leaves nothing the next command does not clean up", function()
    local home = e2e.home()
    local child = spawn_banger(home, { "vm", "create", "c1", "--image", "tiny", "--memory", "256MiB" })
    local handles = e2e.wait_for_launch(home)
    child:kill(9)
    child:wait()
    t.truthy(e2e.processes(home .. "/run/banger") ~= "", "the hypervisor outlived the CLI")
    local vms = e2e.vms(home) -- reconciles
    t.eq(vms.c1, nil, "the half-made VM is gone")
    t.eq(e2e.processes(home .. "/run/banger"), "", "no hypervisor left")
    t.falsy(banger.fs.exists(home .. "/.local/state/banger/vms/" .. handles), "no overlay or work disk left")
    t.eq(e2e.list(home .. "/run/banger/vms"), {}, "no socket left")
  end)

  it("kill -9 during start: the next command stops what was launched", function()
    local home = e2e.home()
    t.eq(t.banger({ "vm", "create", "s1", "--image", "tiny", "--no-start" }, { home = home }).code, 0)
    t.eq(e2e.vms(home).s1.state, "created")
    local child = spawn_banger(home, { "vm", "start", "s1" })
    local dir
    e2e.wait_for(function()
      local v = e2e.vms(home).s1
      dir = v and v.dir
      return dir and banger.fs.exists(dir .. "/handles.json")
    end, 60000, "the hypervisor to be launched")
    child:kill(9)
    child:wait()
    local v = e2e.vms(home).s1
    t.eq(v.state, "error")
    t.eq(v.alive, false)
    t.eq(e2e.processes(home .. "/run/banger"), "")
    t.eq(e2e.list(home .. "/run/banger/vms"), {})
    t.falsy(banger.fs.exists(dir .. "/handles.json"))
    -- the VM can be started again afterwards
    t.eq(t.banger({ "vm", "start", "s1" }, { home = home, timeout_ms = 180000 }).code, 0)
    t.eq(t.banger({ "vm", "delete", "-f", "s1" }, { home = home }).code, 0)
  end)

  it("a VM whose hypervisor died is demoted to stopped", function()
    local home = e2e.home()
    t.eq(t.banger({ "vm", "create", "d1", "--image", "tiny" }, { home = home, timeout_ms = 180000 }).code, 0)
    local h = banger.json.decode(t.read(e2e.vms(home).d1.dir .. "/handles.json"))
    banger.proc.run({ "kill", "-9", tostring(h.pid) })
    e2e.wait_for(function() return banger.proc.cmdline(h.pid) == nil end, 10000, "qemu to die")
    local v = e2e.vms(home).d1
    t.eq(v.state, "stopped")
    t.eq(v.alive, false)
    t.eq(t.banger({ "vm", "delete", "d1" }, { home = home }).code, 0)
  end)

  it("Ctrl-C during create stops the boot and removes the half-made VM", function()
    local home = e2e.home()
    local child = spawn_banger(home, { "vm", "create", "i1", "--image", "tiny" })
    e2e.wait_for_launch(home)
    child:kill(2)
    local st = child:wait(60000)
    t.eq(st.code, 130)
    t.contains(child:read_all("stderr"), "banger: interrupted")
    t.eq(e2e.processes(home .. "/run/banger"), "")
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
    t.eq(e2e.vms(home).i1, nil)
  end)
end)
