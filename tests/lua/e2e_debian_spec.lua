-- The golden image: Debian 12 from Debian packages (mmdebstrap, cached
-- between runs), written into ext4 by the engine, booted with systemd under
-- QEMU, and `vm run` on its defaults.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

describe("Debian golden image", function()
  it("image build debian, then vm run on the defaults prints the guest's os-release", function()
    local tar = banger.proc.run({ t.source_dir() .. "/tests/fixtures/debian-tar.sh", timeout_ms = 900000 })
    t.eq(tar.code, 0, tar.stderr)
    local home = t.tmpdir()
    e2e.kernel_deb()  -- only so apt's package lists exist on a fresh machine
    -- No kernel imported by hand: vm run fetches the default one with apt-get.
    local b = t.banger({ "image", "build", "debian", "--tar", (tar.stdout:gsub("%s+$", "")), "--json" },
      { home = home, timeout_ms = 300000 })
    t.eq(b.code, 0, b.stderr)
    local img = banger.json.decode(b.stdout)
    t.eq(img.name, "debian-12")
    t.eq(img.is_default, true)
    local fsys <close> = banger.ext4.open(img.rootfs_path)
    t.eq(fsys:stat("/usr/local/libexec/banger/banger-agent").mode, tonumber("755", 8))
    t.eq(fsys:stat("/etc/systemd/system/serial-getty@ttyS0.service").target, "/dev/null")
    t.contains(fsys:read("/etc/ssh/sshd_config.d/99-banger.conf"), "PasswordAuthentication no")

    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    banger.proc.run({ "git", "-C", dir, "init", "-q" })
    local r = t.banger({ "vm", "run", "--rm", "--memory", "512MiB", "--", "cat", "/etc/os-release" },
      { home = home, cwd = dir, timeout_ms = 300000 })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "importing the default kernel 'debian-cloud'")
    t.contains(r.stdout, 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"')
    t.eq(e2e.vms(home), {})
  end)
end)

describe("a project's banger.lua", function()
  it("provisions once; a second vm run in a fresh VM sees it provisioned", function()
    local tar = banger.proc.run({ t.source_dir() .. "/tests/fixtures/debian-tar.sh", timeout_ms = 900000 })
    local home = t.tmpdir()
    t.eq(t.banger({ "kernel", "import", e2e.kernel_deb(), "--name", "debian-cloud" }, { home = home }).code, 0)
    t.eq(t.banger({ "image", "build", "debian", "--tar", (tar.stdout:gsub("%s+$", "")) }, { home = home, timeout_ms = 300000 }).code, 0)
    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    banger.proc.run({ "git", "-C", dir, "init", "-q" })
    t.write(dir .. "/banger.lua", [[
vm = { memory = "512MiB" }
function provision(vm)
  vm:exec{ "sh", "-c", "echo provisioned > /etc/banger-provisioned; date +%s%N > /etc/provision-stamp" }
end
]])
    -- provision is code: nothing happens until the project is trusted.
    local refused = t.banger({ "vm", "run", "--rm", "--", "true" }, { home = home, cwd = dir })
    t.eq(refused.code, 77, refused.stderr)
    t.contains(refused.stderr, dir .. "/banger.lua:2: provision runs code")
    t.eq(e2e.vms(home), {})
    local trusted = t.banger({ "trust" }, { home = home, cwd = dir })
    t.eq(trusted.code, 0, trusted.stderr)
    local first = t.banger({ "vm", "run", "--rm", "--", "cat", "/etc/banger-provisioned", "/etc/provision-stamp" },
      { home = home, cwd = dir, timeout_ms = 300000 })
    t.eq(first.code, 0, first.stderr)
    t.contains(first.stderr, "provisioning for " .. dir .. "/banger.lua")
    local second = t.banger({ "vm", "run", "--rm", "--", "cat", "/etc/banger-provisioned", "/etc/provision-stamp" },
      { home = home, cwd = dir, timeout_ms = 300000 })
    t.eq(second.code, 0, second.stderr)
    t.not_contains(second.stderr, "provisioning for")
    t.eq(second.stdout, first.stdout, "the same provisioned image, not a second provisioning")
    t.contains(second.stdout, "provisioned\n")
    local ignored = t.banger({ "vm", "run", "--rm", "--no-project", "--", "cat", "/etc/banger-provisioned" },
      { home = home, cwd = dir, timeout_ms = 300000 })
    t.truthy(ignored.code ~= 0, "--no-project boots the plain image")
    t.eq(e2e.vms(home), {})
  end)
end)

describe("the golden image's boot", function()
  it("reaches multi-user with nothing failed; the agent and sshd start with systemd's first jobs", function()
    local tar = banger.proc.run({ t.source_dir() .. "/tests/fixtures/debian-tar.sh", timeout_ms = 900000 })
    t.eq(tar.code, 0, tar.stderr)
    local home = t.tmpdir()
    t.eq(t.banger({ "kernel", "import", e2e.kernel_deb(), "--name", "debian-cloud" }, { home = home }).code, 0)
    local b = t.banger({ "image", "build", "debian", "--tar", (tar.stdout:gsub("%s+$", "")), "--json" },
      { home = home, timeout_ms = 300000 })
    t.eq(b.code, 0, b.stderr)
    do
      local fsys <close> = banger.ext4.open(banger.json.decode(b.stdout).rootfs_path)
      t.eq(fsys:stat("/etc/systemd/system/default.target").target, "/lib/systemd/system/multi-user.target")
      t.eq(fsys:stat("/etc/systemd/system-generators/systemd-gpt-auto-generator").target, "/dev/null")
      t.eq(fsys:stat("/etc/systemd/system/apt-daily.timer").target, "/dev/null")
      t.falsy(fsys:read("/etc/pam.d/sshd"):find("\nsession%s+%S+%s+pam_motd"), "pam_motd is off for sshd")
    end

    local c = t.banger({ "vm", "create", "d1", "--memory", "512MiB" }, { home = home, timeout_ms = 300000 })
    t.eq(c.code, 0, c.stderr)
    local function guest(script)
      local r = t.banger({ "vm", "exec", "d1", "--", "sh", "-c", script }, { home = home, timeout_ms = 240000 })
      t.eq(r.code, 0, script .. ": " .. r.stdout .. r.stderr)
      return r.stdout
    end
    -- Every unit that is started succeeds: the masks leave nothing waiting or failing.
    t.eq(guest("systemctl is-system-running --wait; systemctl --failed --no-legend --plain"), "running\n")
    t.eq(guest("systemctl get-default"), "multi-user.target\n")
    t.eq(guest("systemctl is-active ssh systemd-journald banger-agent"), "active\nactive\nactive\n")
    -- Ordered after nothing of sysinit: what makes them start first.
    local ssh_after = guest("systemctl show -p After --value ssh.service")
    t.not_contains(ssh_after, "sysinit.target")
    t.not_contains(ssh_after, "basic.target")
    t.not_contains(guest("systemctl show -p After --value banger-agent.service"), "local-fs.target")
    -- The CRNG was ready before systemd started (seeded by the initramfs).
    local crng = tonumber(guest("dmesg | sed -n 's/^\\[ *\\([0-9.]*\\)\\] random: crng init done.*/\\1/p'"))
    local userspace = tonumber(guest("systemctl show -p UserspaceTimestampMonotonic --value")) / 1e6
    t.truthy(crng and crng < userspace, string.format("crng ready at %s s, systemd at %s s", tostring(crng), userspace))
    -- A file in /tmp survives what systemd-tmpfiles-setup does at boot.
    t.eq(guest("echo kept > /tmp/kept && systemd-tmpfiles --create --remove --boot >/dev/null 2>&1; cat /tmp/kept"),
      "kept\n")
    t.eq(t.banger({ "vm", "delete", "-f", "d1" }, { home = home, timeout_ms = 60000 }).code, 0)
    t.eq(e2e.vms(home), {})
  end)
end)
