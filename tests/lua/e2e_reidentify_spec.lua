-- A running guest made a new machine by the agent's reidentify, as after a
-- restore: the default Debian image under QEMU (systemd, OpenSSH), and the
-- same root filesystem booted by banger-init (no systemd: the agent restarts
-- the sshd banger-init started). Checked from inside the guest and from the
-- host's side of its network (a namespace of the test's own): hostname,
-- machine-id, MAC, address and routes, neighbour entries, the clock, the SSH
-- host key sshd serves; a failing step named; a repeat a no-op; and a disk
-- attached with a virtio serial mounted by that serial.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local BANGER_INIT = "/usr/local/libexec/banger/banger-init"

-- A home with the Debian cloud kernel and the golden image built from the cached tar.
local function debian_home()
  local tar = banger.proc.run({ t.source_dir() .. "/tests/fixtures/debian-tar.sh", timeout_ms = 900000 })
  t.eq(tar.code, 0, tar.stderr)
  local home = t.tmpdir()
  t.eq(t.banger({ "kernel", "import", e2e.kernel_deb(), "--name", "debian-cloud" }, { home = home }).code, 0)
  local b = t.banger({ "image", "build", "debian", "--tar", (tar.stdout:gsub("%s+$", "")), "--json" },
    { home = home, timeout_ms = 300000 })
  t.eq(b.code, 0, b.stderr)
  t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
  return home, banger.json.decode(b.stdout)
end

local function probe(home, ns, name, image, init)
  local work = t.tmpdir()
  local r = netns.run(ns, { t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/reidentify_probe.lua", name, image,
    work, init }, { env = t.env(home), cwd = home, timeout_ms = 600000 })
  t.eq(r.code, 0, r.stderr)
  local o = banger.json.decode(r.stdout)
  local steps = {}
  for k, v in pairs(o.result.steps_ms or {}) do
    steps[#steps + 1] = k .. "=" .. v
  end
  table.sort(steps)
  io.stderr:write(string.format("%s: reidentify took %d ms (%s)\n", name, o.result.took_ms, table.concat(steps, " ")))
  return o
end

local function check(o, name, image_has_hostname_file)
  local b, a = o.before, o.after
  -- The failing request names its step, and leaves nothing recorded.
  t.eq(o.failing.ok, false)
  t.eq(o.failing.code, "ENODEV")
  t.contains(o.failing.message, "reidentify step 'net' failed: no network interface eth7")

  t.eq(o.result.repeated, false)
  t.eq(o.result.ssh_host_keys, "regenerated")
  t.truthy(o.result.took_ms >= 0 and o.result.took_ms < 60000, "took_ms " .. tostring(o.result.took_ms))

  t.eq(b.hostname, name .. "\n")
  t.eq(a.hostname, name .. "-new\n")
  t.eq(a.etc_hostname, image_has_hostname_file and (name .. "-new\n") or "absent\n")
  t.eq(a.machine_id, o.sent_machine_id .. "\n")
  t.truthy(a.machine_id ~= b.machine_id, "machine-id changed")

  t.not_contains(b.link, "02:de:ad:be:ef:01")
  t.contains(a.link, "link/ether 02:de:ad:be:ef:01")
  t.contains(a.link, "state UP")
  t.contains(b.addr, "inet " .. o.old_ip .. "/24")
  t.contains(a.addr, "inet 172.30.0.77/24")
  t.not_contains(a.addr, o.old_ip .. "/")
  t.contains(a.routes, "default via 172.30.0.1 dev eth0")
  t.not_contains(a.routes, "src " .. o.old_ip)
  -- The host reached the old address, so the guest knew the bridge's MAC; the link bounce forgot it.
  t.contains(b.neigh, "172.30.0.1 ")
  t.not_contains(a.neigh, "172.30.0.1 ")
  t.contains(o.host_neigh, "lladdr 02:de:ad:be:ef:01")
  t.eq(a.resolv:match("nameserver.*$"), "nameserver 172.30.0.1\nnameserver 10.0.0.53\n")

  -- The clock: set an hour back before, within 2 s of the host's after.
  t.truthy(o.clock_set_back < -3500, "the guest clock was set back: " .. o.clock_set_back)
  t.truthy(o.clock.guest > o.clock.host_before - 2 and o.clock.guest < o.clock.host_after + 2,
    string.format("guest clock %.3f, host %.3f..%.3f", o.clock.guest, o.clock.host_before, o.clock.host_after))

  -- New host keys, and the sshd on the new address serves them.
  t.truthy(o.old_served_key and b.key:find(o.old_served_key, 1, true), "the old sshd served the image's key")
  t.truthy(a.key ~= b.key, "the host key file changed")
  t.contains(b.host_keys, "ssh_host_rsa_key\n")
  t.eq(a.host_keys, "ssh_host_ecdsa_key\nssh_host_ecdsa_key.pub\nssh_host_ed25519_key\nssh_host_ed25519_key.pub\n")
  t.truthy(o.result.steps_ms["ssh-host-keys"] and o.result.steps_ms.net and o.result.steps_ms.clock, "steps timed")
  t.truthy(o.new_served_key and a.key:find(o.new_served_key, 1, true),
    "sshd serves the new key: " .. tostring(o.new_served_key) .. " vs " .. a.key)
  t.contains(o.applied, '"generation"')

  -- A repeat of the applied generation changes nothing.
  t.eq(o.repeat_result.repeated, true)
  t.eq(o.repeat_result.ssh_host_keys, "regenerated")
  t.eq(o.after_repeat.key, a.key)
  t.eq(o.after_repeat.machine_id, a.machine_id)

  -- The disk attached with serial banger-ws, mounted by its serial (twice is fine).
  t.eq(o.mounted, true)
  t.eq(o.mounted_again, true)
  t.eq(o.hello, "hello from the host\n")
  t.contains(o.serials, "banger-ws")
  t.truthy(o.mounts:match("^/dev/vd%a /root/ws/mnt ext4 "), o.mounts)
  t.eq(o.missing_mount.ok, false)
  t.eq(o.missing_mount.code, "ENODEV")
  t.contains(o.missing_mount.message, "no virtio disk with serial 'banger-none' appeared within 500 ms")
end

describe("reidentify on a real guest", function()
  local ns
  after_each(function()
    netns.cleanup()
    ns = nil
  end)

  it("the Debian image under systemd becomes a new machine; a disk mounts by serial", function()
    local home, img = debian_home()
    ns = netns.new("reid")
    local o = probe(home, ns, "reidvm", img.name)
    check(o, "reidvm", false)
    t.eq(e2e.vms(home), {})
  end)

  it("the same root filesystem under banger-init: the agent restarts sshd itself", function()
    local home, img = debian_home()
    -- Without systemd banger-init stays PID 1 and starts /usr/sbin/sshd itself.
    local rootfs = home .. "/noinit.ext4"
    t.eq(banger.proc.run({ "cp", "--sparse=always", img.rootfs_path, rootfs }).code, 0)
    do
      local fsys <close> = banger.ext4.open(rootfs, { write = true })
      fsys:remove("/usr/lib/systemd/systemd")
      fsys:symlink("banger-agent", BANGER_INIT, {})
      fsys:write("/etc/hostname", "debian\n", {})
      fsys:close()
    end
    local reg = t.banger({ "image", "register", "--rootfs", rootfs, "--name", "debian-noinit", "--kernel", "debian-cloud" },
      { home = home })
    t.eq(reg.code, 0, reg.stderr)
    ns = netns.new("reid")
    local o = probe(home, ns, "initvm", "debian-noinit", BANGER_INIT)
    check(o, "initvm", true)
    t.eq(e2e.vms(home), {})
  end)

  it("a Dropbear guest: the key dropbear made is removed and its restarted listener serves a new one", function()
    local home = e2e.home()
    e2e.ssh_image(home)
    ns = netns.new("reid")
    local r = netns.run(ns, { t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/reidentify_dropbear_probe.lua",
      "dbvm" }, { env = t.env(home), cwd = home, timeout_ms = 300000 })
    t.eq(r.code, 0, r.stderr)
    local o = banger.json.decode(r.stdout)
    io.stderr:write(string.format("dbvm: reidentify took %d ms (ssh-host-keys=%d)\n", o.result.took_ms,
      o.result.steps_ms["ssh-host-keys"]))
    t.eq(o.result.ssh_host_keys, "regenerated")
    t.truthy(o.old_served and o.old_file, "dropbear -R made and served a key before: " .. r.stdout)
    t.eq(o.file_after_reidentify, nil, "the old key file is gone (a new one is made on the next connection)")
    t.truthy(o.listener_after ~= o.old_listener and o.listener_after:match("%d"),
      "the listener was restarted: " .. o.old_listener .. " -> " .. o.listener_after)
    t.truthy(o.new_served and o.new_served ~= o.old_served, "a new key is served: " .. tostring(o.new_served))
    t.truthy(o.new_file and o.new_file ~= o.old_file, "and kept")
    t.eq(e2e.vms(home), {})
  end)
end)
