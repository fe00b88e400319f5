--- banger.golden: what banger adds to a Debian-like root filesystem so it
-- boots as a banger VM: the guest agent and its systemd unit, the sshd
-- drop-in, and masks for units that wait for devices a microVM never has.
-- Written with the ext4 engine into the image before it is published.
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

M.agent_unit = [[
[Unit]
Description=banger guest agent
DefaultDependencies=no
After=local-fs.target
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

-- Without udev in the guest these wait 90 s for device units that never come.
M.masked_units = { "serial-getty@ttyS0.service", "getty@tty1.service", "systemd-udev-settle.service" }

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
  for _, unit in ipairs(M.masked_units) do
    local p = "/etc/systemd/system/" .. unit
    if img:exists(p) then
      img:remove(p)
    end
    img:symlink("/dev/null", p, {})
  end
  if img:exists("/etc/ssh") then
    img:mkdir("/etc/ssh/sshd_config.d", { parents = true, mode = D })
    img:write("/etc/ssh/sshd_config.d/99-banger.conf", M.sshd_dropin, {})
  end
  -- The hostname comes from the kernel command line (banger.name=).
  if img:exists("/etc/hostname") then
    img:remove("/etc/hostname")
  end
end

return M
