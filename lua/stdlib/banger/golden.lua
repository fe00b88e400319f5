--- banger.golden: what banger adds to a Debian-like root filesystem so it
-- boots as a banger VM: the guest agent and its systemd unit, the sshd
-- drop-in, a minimal default target, and masks for units and generators a
-- sandbox never needs (each is a process, and a process costs about 0.1 s
-- of an emulated CPU at boot: docs/performance.md). Written with the ext4
-- engine into the image before it is published.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local sys = require("banger.native.sys")

local M = {}

M.agent_path = "/usr/local/libexec/banger/banger-agent"

--- The agent binary built beside banger (build tree or installed libexec).
function M.agent_binary()
  local dir = sys.exe():match("^(.*)/[^/]+$")
  for _, p in ipairs({ dir .. "/cli/banger-agent/banger-agent", dir .. "/../libexec/banger/banger-agent" }) do
    if fs.exists(p) then
      return p
    end
  end
  errors.raise("ENOENT", "banger-agent not found beside " .. sys.exe() .. " (build the banger-agent target)")
end

-- The agent needs nothing systemd sets up (banger's initramfs mounted the
-- disks, configured the network and named the agent's port), so it starts
-- with systemd's first jobs rather than after local-fs.target.
M.agent_unit = [[
[Unit]
Description=banger guest agent
DefaultDependencies=no
Before=sysinit.target

[Service]
ExecStart=/usr/local/libexec/banger/banger-agent --serial /dev/virtio-ports/banger.agent
Restart=always
RestartSec=1

[Install]
WantedBy=sysinit.target
]]

-- Password and keyboard-interactive logins off; root only by key;
-- StrictModes stays on (the work disk is provisioned with modes it accepts).
M.sshd_dropin = [[
# Written by banger.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile /root/.ssh/authorized_keys
]]

-- No display in a banger VM: multi-user, never graphical.
M.default_target = "multi-user.target"

M.masked_units = {
  -- Without udev in the guest these wait 90 s for device units that never
  -- come; and nobody logs in on a console (banger's is a log file).
  "serial-getty@ttyS0.service", "getty@tty1.service", "systemd-udev-settle.service",
  "serial-getty@.service", "getty@.service", "getty-static.service",
  -- Periodic maintenance a disposable VM does not live to need (apt-daily
  -- would download package lists in every sandbox).
  "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
  "e2scrub_all.timer", "e2scrub_reap.service",
  -- The guest root has no kernel modules (banger's initramfs loads the few
  -- a VM needs), so these only fail quietly.
  "modprobe@.service", "systemd-modules-load.service",
  -- Debugging filesystems; `mount -t debugfs none /sys/kernel/debug` when wanted.
  "dev-hugepages.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
}

-- Generators for disks and consoles a banger VM does not have (encrypted,
-- integrity or verity volumes, GPT auto-discovery, hibernation, offline
-- updates, gettys, systemd.run=). fstab, rc.local, SysV scripts and the
-- debug switches (systemd.mask= on the kernel command line) stay.
M.disabled_generators = {
  "systemd-cryptsetup-generator", "systemd-integritysetup-generator", "systemd-veritysetup-generator",
  "systemd-gpt-auto-generator", "systemd-hibernate-resume-generator", "systemd-system-update-generator",
  "systemd-getty-generator", "systemd-run-generator",
}

-- `vm run` waits for sshd, which needs nothing of sysinit.target either; by
-- default it waits for all of it (journald's start and flush, tmpfiles,
-- utmp: seconds under emulation). Its configuration test is a second sshd
-- process; sshd refuses a bad configuration by itself.
M.sshd_unit_dropin = [[
# Written by banger: start with systemd's first jobs (the network and the
# disks were set up by banger's initramfs).
[Unit]
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target

[Service]
ExecStartPre=
]]

-- sshd's PAM stack runs /etc/update-motd.d (processes) at every login to
-- build a message of the day that banger's .hushlogin then hides: over a
-- second of each `vm run` command under emulation. Those lines go.
function M.without_motd(pam)
  local out = ("\n" .. pam):gsub("\n(session%s+[^\n]-pam_motd%.so[^\n]*)", "\n# banger: hushed (.hushlogin), not built: %1")
  return out:sub(2)
end

-- systemd-tmpfiles empties /tmp at boot ("D /tmp"); the agent answers before
-- that job runs, so a command's files in /tmp could vanish under it. A new
-- VM's /tmp is empty anyway; a restarted one keeps it, like /var/tmp.
M.tmpfiles_tmp = "# Written by banger: create /tmp, never empty it at boot.\nd /tmp 1777 root root -\n"

function M.customize(img)
  local D = tonumber("755", 8)
  img:mkdir("/usr/local/libexec/banger", { parents = true, mode = D })
  img:write(M.agent_path, errors.check(fs.read(M.agent_binary())), { mode = D })
  img:mkdir("/etc/systemd/system/sysinit.target.wants", { parents = true, mode = D })
  img:write("/etc/systemd/system/banger-agent.service", M.agent_unit, {})
  if img:exists("/etc/systemd/system/sysinit.target.wants/banger-agent.service") then
    img:remove("/etc/systemd/system/sysinit.target.wants/banger-agent.service")
  end
  img:symlink("/etc/systemd/system/banger-agent.service", "/etc/systemd/system/sysinit.target.wants/banger-agent.service", {})
  local function replace_link(target, p)
    if img:exists(p) then
      img:remove(p)
    end
    img:symlink(target, p, {})
  end
  for _, unit in ipairs(M.masked_units) do
    replace_link("/dev/null", "/etc/systemd/system/" .. unit)
  end
  replace_link("/lib/systemd/system/" .. M.default_target, "/etc/systemd/system/default.target")
  img:mkdir("/etc/systemd/system-generators", { parents = true, mode = D })
  for _, g in ipairs(M.disabled_generators) do
    replace_link("/dev/null", "/etc/systemd/system-generators/" .. g)
  end
  img:mkdir("/etc/tmpfiles.d", { parents = true, mode = D })
  img:write("/etc/tmpfiles.d/tmp.conf", M.tmpfiles_tmp, {})
  if img:exists("/etc/ssh") then
    img:mkdir("/etc/ssh/sshd_config.d", { parents = true, mode = D })
    img:write("/etc/ssh/sshd_config.d/99-banger.conf", M.sshd_dropin, {})
  end
  if img:exists("/etc/pam.d/sshd") then
    img:write("/etc/pam.d/sshd", M.without_motd(img:read("/etc/pam.d/sshd")), {})
  end
  for _, unit in ipairs({ "ssh.service", "sshd.service" }) do
    if img:exists("/usr/lib/systemd/system/" .. unit) or img:exists("/lib/systemd/system/" .. unit) then
      img:mkdir("/etc/systemd/system/" .. unit .. ".d", { parents = true, mode = D })
      img:write("/etc/systemd/system/" .. unit .. ".d/banger-early.conf", M.sshd_unit_dropin, {})
      break
    end
  end
  -- The hostname comes from the kernel command line (banger.name=).
  if img:exists("/etc/hostname") then
    img:remove("/etc/hostname")
  end
end

return M
