-- Snapshots, restores and forks end to end: a real kernel under QEMU (TCG),
-- a real network in a namespace of the test's own, the guest agent and
-- dropbear in the guest. A snapshot's files never change once it is ready;
-- every restored VM is a machine of its own (name, MAC, address,
-- machine-id, SSH host key, RNG, clock) and shares nothing written after
-- the snapshot with its source or its siblings.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

-- What makes a guest itself, printed by the guest in one line each.
local IDENTITY = table.concat({
  "hostname",
  "cat /etc/machine-id 2>/dev/null || echo none",
  "cat /sys/class/net/eth0/address",
  "ip -4 -o addr show dev eth0 | grep -o 'inet [0-9.]*' | cut -d' ' -f2",
  "date +%s",
  "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo",
  "cat /etc/dropbear/dropbear_ed25519_host_key 2>/dev/null | sha256sum | cut -d' ' -f1",
}, "; ")

local function sha256_of(paths)
  local argv = { "sha256sum" }
  for _, p in ipairs(paths) do
    argv[#argv + 1] = p
  end
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, r.stderr)
  return r.stdout
end

describe("snapshots", function()
  local world
  after_each(function()
    netns.cleanup(world)
    world = nil
  end)

  it("a snapshot restores into machines of their own; its files never change; forks share nothing new", function()
    world = netns.world("unused\n")
    local home = e2e.home()
    e2e.ssh_image(home)
    local run = netns.banger(world.host, home)
    local function ok(args, timeout)
      local r = run(args, timeout)
      t.eq(r.code, 0, table.concat(args, " ") .. ": " .. r.stderr)
      return r
    end
    local function identity(vm)
      -- dropbear -R makes its host key on the first connection: make one
      ok({ "vm", "ssh", vm, "--", "true" }, 60000)
      local before = os.time()
      local r = ok({ "vm", "exec", vm, "--", "sh", "-c", IDENTITY })
      local after = os.time()
      local f = {}
      for line in r.stdout:gmatch("[^\n]*") do
        f[#f + 1] = line
      end
      local id = { hostname = f[1], machine_id = f[2], mac = f[3], ip = f[4], time = tonumber(f[5]), random = f[6],
        host_key = f[7], host_before = before, host_after = after }
      t.truthy(id.time and id.host_key, vm .. "'s identity: " .. r.stdout .. r.stderr)
      return id
    end

    ok({ "vm", "create", "src", "--image", "tiny-ssh", "--memory", "256MiB" })
    ok({ "vm", "exec", "src", "--", "sh", "-c", "echo before > /root/before" })
    local taken = json_doc.conforms("vm snapshot", ok({ "vm", "snapshot", "src", "--name", "s1", "--json" }).stdout)
    t.eq(taken.snapshot.name, "s1")
    t.eq(taken.snapshot.ram, "file", "the source's RAM is a shared file: only the device state is streamed")
    t.eq(taken.snapshot.used_by_vms, { "src" }, "the source runs on above the snapshot's layers")
    t.truthy(taken.pause_ms > 0)
    local dir = taken.snapshot.dir
    local files = { dir .. "/state", dir .. "/ram", dir .. "/rootfs.qcow2", dir .. "/work.ext4" }
    local sums = sha256_of(files)
    t.eq(e2e.vms(home).src.state, "running")
    ok({ "vm", "exec", "src", "--", "sh", "-c", "echo after > /root/after" })

    -- two restores of s1 running at once
    ok({ "vm", "create", "--from", "s1", "r1" })
    ok({ "vm", "create", "--from", "s1", "r2" })
    local src, r1, r2 = identity("src"), identity("r1"), identity("r2")
    for name, id in pairs({ src = src, r1 = r1, r2 = r2 }) do
      t.eq(id.hostname, name)
      -- the guest read its clock while the host's went from host_before to host_after
      t.truthy(id.time >= id.host_before - 2 and id.time <= id.host_after + 2, name .. "'s clock reads " .. id.time
        .. " while the host's went from " .. id.host_before .. " to " .. id.host_after)
    end
    local vms = e2e.vms(home)
    for _, key in ipairs({ "machine_id", "mac", "ip", "random", "host_key" }) do
      t.truthy(r1[key] ~= r2[key] and r1[key] ~= src[key] and r2[key] ~= src[key],
        key .. " differs: " .. tostring(src[key]) .. " " .. tostring(r1[key]) .. " " .. tostring(r2[key]))
    end
    t.eq(r1.mac, vms.r1.mac)
    t.eq(r1.ip, vms.r1.ip)
    t.eq(r2.ip, vms.r2.ip)
    t.eq(#r1.machine_id, 32)

    -- what was written before the snapshot is there; after it, only in its writer
    t.eq(ok({ "vm", "exec", "r1", "--", "cat", "/root/before" }).stdout, "before\n")
    t.truthy(run({ "vm", "exec", "r1", "--", "cat", "/root/after" }).code ~= 0, "r1 sees src's later write")
    ok({ "vm", "exec", "r1", "--", "sh", "-c", "echo mine > /root/r1-only && sync" })
    t.truthy(run({ "vm", "exec", "r2", "--", "cat", "/root/r1-only" }).code ~= 0, "r2 sees r1's file")
    t.truthy(run({ "vm", "exec", "src", "--", "cat", "/root/r1-only" }).code ~= 0, "src sees r1's file")

    -- a restored VM is reachable over SSH under its own name, with its own pin
    t.eq(ok({ "vm", "ssh", "r1", "--", "hostname" }, 60000).stdout, "r1\n")

    -- fork: a snapshot of a running VM and N restores in one command
    local fork = json_doc.conforms("vm fork", ok({ "vm", "fork", "r1", "--count", "2", "--name", "f", "--json" }).stdout)
    t.eq(#fork.vms, 2)
    t.eq(fork.vms[1].name, "f-1")
    t.eq(fork.vms[2].name, "f-2")
    local f1, f2 = identity("f-1"), identity("f-2")
    t.eq(f1.hostname, "f-1")
    t.truthy(f1.ip ~= f2.ip and f1.machine_id ~= f2.machine_id and f1.host_key ~= f2.host_key)
    t.eq(ok({ "vm", "exec", "f-2", "--", "cat", "/root/r1-only" }).stdout, "mine\n", "a fork has its source's files")

    t.eq(sha256_of(files), sums, "the snapshot's files are byte for byte what they were when it was taken")

    -- a snapshot in use cannot be deleted, and says by whom
    local busy = run({ "snapshot", "delete", "s1" })
    t.eq(busy.code, 1)
    t.contains(busy.stderr, "still used by VM(s) r1, r2, src")
    for _, vm in ipairs({ "f-1", "f-2", "r1", "r2", "src" }) do
      ok({ "vm", "delete", "-f", vm })
    end
    local list = json_doc.conforms("snapshot list", ok({ "snapshot", "list", "--json" }).stdout)
    t.eq(json_doc.conforms("snapshot show", ok({ "snapshot", "show", "s1", "--json" }).stdout).name, "s1")
    t.eq(#list, 1, "the fork snapshot went with its last VM")
    t.eq(list[1].name, "s1")
    t.eq(list[1].used_by_vms, {})
    ok({ "vm", "create", "--from", "s1", "last" })
    ok({ "vm", "delete", "-f", "last" })
    local pruned = json_doc.conforms("snapshot prune", ok({ "snapshot", "prune", "--json" }).stdout)
    t.eq(pruned.deleted, { "s1" })
    t.eq(e2e.list(home .. "/.local/state/banger/snapshots"), {})
    t.eq(e2e.processes(home .. "/"), "", "no hypervisor of this home is left")
  end)

  it("refuses a snapshot whose kernel changed, and one of a VM that is not running", function()
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "off" } }\n')
    local c = t.banger({ "vm", "create", "plain", "--image", "tiny", "--memory", "256MiB", "--no-start" },
      { home = home })
    t.eq(c.code, 0, c.stderr)
    local s = t.banger({ "vm", "snapshot", "plain" }, { home = home })
    t.eq(s.code, 1)
    t.contains(s.stderr, "VM 'plain' is not running")
    t.eq(t.banger({ "vm", "start", "plain" }, { home = home, timeout_ms = 180000 }).code, 0)
    t.eq(t.banger({ "vm", "snapshot", "plain", "--name", "p1" }, { home = home, timeout_ms = 60000 }).code, 0)
    do -- the kernel is re-imported from another build (the catalog's digest changes)
      local manifest = home .. "/.local/state/banger/kernels/debian-cloud/manifest.json"
      local m = banger.json.decode(t.read(manifest))
      m.sha256 = string.rep("0", 64)
      t.write(manifest, banger.json.encode(m))
    end
    local r = t.banger({ "vm", "create", "--from", "p1", "again" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "snapshot 'p1' cannot be restored: kernel 'debian-cloud' changed since")
    t.eq(e2e.vms(home).again, nil, "nothing was created")
    local bad = t.banger({ "vm", "create", "--from", "p1", "--memory", "1GiB", "x" }, { home = home })
    t.eq(bad.code, 2)
    t.contains(bad.stderr, "--memory cannot be combined with it")
    t.eq(t.banger({ "vm", "delete", "-f", "plain" }, { home = home }).code, 0)
  end)
end)
