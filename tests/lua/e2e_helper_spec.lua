-- The non-root path end to end: banger running as an ordinary uid, with no
-- privilege of its own, boots a real guest with networking and NAT through
-- the root helper (and an egress allow-list, its resolver calling the
-- helper as the owner), and leaves nothing behind. The helper runs as root in a
-- namespace the test made; the owner's banger runs in it through setpriv.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local OWNER = 65534

describe("a non-root owner through the root helper", function()
  local world, helper, spawned, vm_home
  after_each(function()
    if vm_home and world then
      -- a failed assertion must not leave the VM running
      netns.run(world.host, { "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups", t.bin(), "vm",
        "delete", "-f", "egvm" }, { env = t.env(vm_home), cwd = vm_home, timeout_ms = 120000 })
    end
    vm_home = nil
    for _, p in ipairs(spawned or {}) do
      p:kill(9)
      p:wait()
    end
    spawned = nil
    if helper then
      helper:kill(15)
      helper:wait(10000)
      helper = nil
    end
    netns.cleanup(world)
    world = nil
  end)

  -- The helper in the world's host namespace, and an owner's home whose
  -- config points at it (plus `extra` config).
  local function setup(extra)
    world = netns.world("hello non-root\n")
    local parent = t.tmpdir()
    banger.proc.run({ "chmod", "0755", parent })
    local sock = parent .. "/run/helper.sock"
    helper = t.spawn({ "ip", "netns", "exec", world.host, os.getenv("BANGER_BUILD_DIR") .. "/banger-helper",
      "--socket", sock, "--owner", OWNER .. ":" .. OWNER, stderr = "pipe" })
    t.wait_for(function() return banger.fs.exists(sock) end, 30000, "the helper's socket")

    local home = e2e.home()
    banger.proc.run({ "chmod", "0755", home })
    t.write(home .. "/.config/banger/config.lua", string.format(
      'return { network = { mode = "on", nameservers = { "10.200.0.2" } }, helper = { socket = %q }%s }\n', sock,
      extra or ""))
    t.env(home)
    banger.proc.run({ "chown", "-R", OWNER .. ":" .. OWNER, home })
    return home
  end

  local function as_owner(home, argv, timeout_ms)
    local cmd = { "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups", t.bin() }
    for _, a in ipairs(argv) do
      cmd[#cmd + 1] = a
    end
    return netns.run(world.host, cmd, { env = t.env(home), cwd = home, timeout_ms = timeout_ms or 240000 })
  end

  it("vm run --nat boots, reaches the outside, and cleans up", function()
    local home = setup()
    local r = as_owner(home, { "vm", "run", "--rm", "--nat", "--image", "tiny", "--memory", "256MiB", "--", "sh", "-c",
      "id -u; printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc 10.200.0.2 8080 | tail -n 1" })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "hello non-root")

    t.not_contains(netns.run(world.host, { "ip", "-o", "link", "show" }).stdout, "bgtap")
    t.eq(netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).code ~= 0, true, "NAT table removed")
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)

  -- The egress allow-list's non-root path: the helper's ensure_egress at
  -- start, and its egress_allow called by the resolver (`banger dns
  -- egress`, the owner's, in the world's host namespace), which forwards to
  -- a fake upstream in the outside namespace (tests/lua/fixtures/fake_dns.py
  -- at 10.200.0.2, the config's nameserver). allowed.test is the world's
  -- server (10.200.0.2), other.test a second one (10.200.0.3).
  it("vm run --allow-host allowed.test: the owner's resolver opens that name only, through the helper", function()
    local home = setup()
    local h = world.host
    local queries
    spawned, queries = netns.fake_internet(world)
    t.write(queries, "")

    -- (wget -T crashes Debian's busybox 1.35: timeout bounds a dropped connection instead)
    local fetch = "busybox timeout 10 busybox wget -q -O - http://%s:8080/probe 2>&1 || echo FAILED-%s"
    vm_home = home
    local r = as_owner(home, { "vm", "run", "--allow-host", "allowed.test", "--name", "egvm", "--image", "tiny",
      "--memory", "256MiB", "--", "sh", "-c", table.concat({
        "cat /etc/resolv.conf",
        "busybox nslookup allowed.test",
        string.format(fetch, "allowed.test", "ALLOWED"),
        "busybox nslookup other.test || echo NO-OTHER-NAME",
        string.format(fetch, "10.200.0.3", "OTHER-IP"),
      }, "; ") }, 300000)
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "nameserver 172.30.0.1")
    t.contains(r.stdout, "hello non-root\n")
    t.not_contains(r.stdout, "FAILED-ALLOWED")
    t.contains(r.stdout, "NO-OTHER-NAME")
    t.contains(r.stdout, "FAILED-OTHER-IP")
    t.not_contains(r.stdout, "other\n")
    -- the owner's resolver forwarded allowed.test from the host namespace, and only that
    local asked = t.read(queries)
    t.contains(asked, "10.200.0.1 allowed.test")
    t.not_contains(asked, "other.test")
    t.contains(banger.proc.run({ "sh", "-c", "cat " .. home .. "/.local/state/banger/*.log" }).stdout,
      "refused name other.test for VM egvm")

    -- The resolver runs as the owner, the tap is the owner's (egress_allow
    -- accepts only its caller's taps), and the answer's address is in the
    -- VM's set with the record's TTL as its timeout.
    local resolver
    for pid in netns.sh({ "ip", "netns", "pids", h }):gmatch("%d+") do
      local ok, cmd = pcall(t.read, "/proc/" .. pid .. "/cmdline")
      if ok and cmd:find("\0dns\0egress", 1, true) then
        resolver = pid
      end
    end
    t.truthy(resolver, "the egress resolver runs in the host namespace")
    t.eq(tonumber(t.read("/proc/" .. resolver .. "/status"):match("\nUid:%s+(%d+)")), OWNER, "it runs as the owner")
    local show = as_owner(home, { "vm", "show", "egvm", "--json" })
    t.eq(show.code, 0, show.stderr)
    local info = banger.json.decode(show.stdout)
    t.eq(info.allow_hosts, { "allowed.test" })
    local tap = "bgtap" .. info.id:sub(1, 10)
    t.eq(netns.run(h, { "cat", "/sys/class/net/" .. tap .. "/owner" }).stdout, OWNER .. "\n", "the tap's owner")
    local set = netns.run(h, { "nft", "-j", "list", "set", "ip", "banger", "egress_" .. tap })
    t.eq(set.code, 0, set.stderr)
    local found
    for _, item in ipairs(banger.json.decode(set.stdout).nftables) do
      for _, e in ipairs(item.set and item.set.elem or {}) do
        if type(e) == "table" and e.elem and e.elem.val == "10.200.0.2" then
          found = e.elem
        end
        t.truthy(e ~= "10.200.0.3" and not (e.elem and e.elem.val == "10.200.0.3"), set.stdout)
      end
    end
    t.truthy(found, set.stdout)
    t.truthy(found.timeout and found.timeout > 0 and found.timeout <= 120 and found.expires <= found.timeout,
      set.stdout)

    local d = as_owner(home, { "vm", "delete", "-f", "egvm" })
    t.eq(d.code, 0, d.stderr)
    vm_home = nil
    t.not_contains(netns.run(h, { "ip", "-o", "link", "show" }).stdout, "bgtap")
    t.truthy(netns.run(h, { "nft", "list", "set", "ip", "banger", "egress_" .. tap }).code ~= 0, "the set is gone")
    t.truthy(netns.run(h, { "nft", "list", "table", "ip", "banger" }).code ~= 0, "table ip banger is gone")
    t.truthy(netns.run(h, { "nft", "list", "table", "bridge", "banger" }).code ~= 0, "table bridge banger is gone")
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)

  it("driver.isolate: QEMU runs as a uid of its own, reaches the guest, and only the helper can kill it", function()
    local home = setup(", driver = { isolate = true }")
    local c = as_owner(home, { "vm", "create", "box", "--nat", "--image", "tiny", "--memory", "256MiB" })
    t.eq(c.code, 0, c.stderr)
    local show = as_owner(home, { "vm", "show", "box", "--json" })
    t.eq(show.code, 0, show.stderr)
    local shown = banger.json.decode(show.stdout)
    t.eq(shown.isolated, true)
    local pid = shown.pid
    local status = t.read("/proc/" .. pid .. "/status")
    local uid = tonumber(status:match("\nUid:%s+(%d+)"))
    t.truthy(uid >= 0x7e000000 and uid < 0x7e000000 + 4096, "QEMU's uid " .. uid .. " is one of the VMM range")
    t.eq(tonumber(status:match("\nGid:%s+(%d+)")), uid, "and its gid is its own")
    -- Nothing of the owner's is named on its command line: it got descriptors.
    t.not_contains(t.read("/proc/" .. pid .. "/cmdline"), home)

    local r = as_owner(home, { "vm", "exec", "box", "--", "sh", "-c",
      "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc 10.200.0.2 8080 | tail -n 1" })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "hello non-root")

    -- The owner cannot signal it itself, and the helper's signal_vmm, which
    -- banger's kill uses, refuses the owner's other processes.
    local own = netns.run(world.host, { "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups", "kill",
      "-9", tostring(pid) })
    t.truthy(own.code ~= 0, "the owner may not signal the isolated QEMU")
    local victim = t.spawn({ "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER, "--clear-groups", "sleep", "30" })
    t.wait_for(function()
      local ok, cmd = pcall(t.read, "/proc/" .. victim:pid() .. "/cmdline")
      return ok and cmd:sub(1, 6) == "sleep\0"
    end, 10000, "setpriv to exec the sleep")
    local refused = as_owner(home, { "run", t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", "signal_vmm",
      banger.json.encode({ pid = victim:pid(), signal = "KILL" }) })
    t.eq(banger.json.decode(refused.stdout).error, "EPERM", refused.stdout)
    t.truthy(t.read("/proc/" .. victim:pid() .. "/cmdline"):find("sleep", 1, true), "the sleep is alive")
    victim:kill(9)
    victim:wait(5000)

    local k = as_owner(home, { "vm", "kill", "box" })
    t.eq(k.code, 0, k.stderr)
    local gone = not banger.fs.exists("/proc/" .. pid .. "/cmdline") or t.read("/proc/" .. pid .. "/cmdline") == ""
    t.truthy(gone, "QEMU is gone")

    -- A later start is isolated again, and a clean stop works through QMP and the agent.
    local st = as_owner(home, { "vm", "start", "box" })
    t.eq(st.code, 0, st.stderr)
    local again = banger.json.decode(as_owner(home, { "vm", "show", "box", "--json" }).stdout).pid
    t.truthy(tonumber(t.read("/proc/" .. again .. "/status"):match("\nUid:%s+(%d+)")) >= 0x7e000000)
    local stop = as_owner(home, { "vm", "stop", "box" })
    t.eq(stop.code, 0, stop.stderr)
    local d = as_owner(home, { "vm", "delete", "box" })
    t.eq(d.code, 0, d.stderr)
    t.not_contains(netns.run(world.host, { "ip", "-o", "link", "show" }).stdout, "bgtap")
  end)

  it("driver.isolate: kill -9 of banger right after the launch, and the next command has the helper kill QEMU", function()
    local home = setup(", driver = { isolate = true }")
    local child = t.spawn({ "ip", "netns", "exec", world.host, "setpriv", "--reuid=" .. OWNER, "--regid=" .. OWNER,
      "--clear-groups", t.bin(), "vm", "create", "crashy", "--image", "tiny", "--memory", "256MiB",
      env = t.env(home), cwd = home, stderr = "pipe" })
    e2e.wait_for_launch(home)
    child:kill(9)
    child:wait()
    t.truthy(e2e.processes("banger-crashy") ~= "", "the isolated QEMU outlived the CLI")
    local l = as_owner(home, { "vm", "list", "--json" }) -- reconciles
    t.eq(l.code, 0, l.stderr)
    t.eq(banger.json.decode(l.stdout)[1], nil, "the half-made VM is gone")
    e2e.wait_for(function() return e2e.processes("banger-crashy") == "" end, 10000, "the isolated QEMU to be killed")
  end)
end)
