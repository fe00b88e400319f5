--- banger.guest_sshd: an SSH server for container images that have none.
-- Only where the VM has NAT (the package comes from the distribution's own
-- mirrors), after boot, through the agent: the package manager is chosen
-- from /etc/os-release (ID, then ID_LIKE). banger-init starts the server on
-- later boots. Everything else keeps working through the agent without it.
local errors = require("banger.errors")
local log = require("banger.log")

local M = {}

-- Install commands per distribution family, in order of preference.
M.installers = {
  debian = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server",
  alpine = "apk add --no-cache openssh-server",
  fedora = "dnf install -y openssh-server",
  arch = "pacman -Sy --noconfirm openssh",
  suse = "zypper --non-interactive install openssh-server",
}
-- IDs that belong to a family above.
M.family_of = {
  debian = "debian", ubuntu = "debian", alpine = "alpine", fedora = "fedora", rhel = "fedora", centos = "fedora",
  rocky = "fedora", almalinux = "fedora", arch = "arch", archlinux = "arch", opensuse = "suse",
  ["opensuse-leap"] = "suse", ["opensuse-tumbleweed"] = "suse", suse = "suse", sles = "suse",
}

--- The family of an os-release text (ID first, then each ID_LIKE), or nil.
function M.family(os_release)
  local fields = {}
  for k, v in os_release:gmatch("([%w_]+)=\"?([^\"\n]*)\"?") do
    fields[k] = v
  end
  local candidates = { fields.ID }
  for like in (fields.ID_LIKE or ""):gmatch("%S+") do
    candidates[#candidates + 1] = like
  end
  for _, id in ipairs(candidates) do
    local fam = id and M.family_of[id:lower()]
    if fam then
      return fam
    end
  end
  return nil
end

--- The shell script that installs, keys and starts sshd for a family.
function M.script(family)
  local install = M.installers[family]
  if not install then
    return nil
  end
  local dropin = require("banger.golden").sshd_dropin
  return table.concat({
    "set -e",
    install,
    "ssh-keygen -A",
    "mkdir -p /etc/ssh/sshd_config.d /run/sshd",
    "cat > /etc/ssh/sshd_config.d/99-banger.conf <<'BANGER'",
    dropin .. "BANGER",
    -- Older sshd_configs do not include the drop-in directory.
    "grep -q '^Include /etc/ssh/sshd_config.d' /etc/ssh/sshd_config || "
      .. "sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config",
    "/usr/sbin/sshd",
  }, "\n")
end

--- Installs and starts sshd in a running VM (NAT required). Returns true,
-- or false and why; never raises (the VM stays usable through the agent).
function M.ensure(row)
  local guest = require("banger.guest")
  local ok, err = pcall(function()
    local probe = guest.exec(row, { "sh", "-c", "test -x /usr/sbin/sshd && echo present; cat /etc/os-release" },
      { capture = true })
    if probe.stdout:find("^present") then
      return
    end
    local family = M.family(probe.stdout or "")
    if not family then
      errors.raise("ENOTSUP", "no known package manager for this image (/etc/os-release ID and ID_LIKE)")
    end
    require("banger.ui").info("installing an SSH server in " .. row.name .. " (" .. family .. " packages)")
    local r = guest.exec(row, { "sh", "-c", M.script(family) }, { capture = true })
    if r.code ~= 0 then
      errors.raise("EGUEST", "installing openssh-server failed: " .. (r.stderr or ""):sub(-400))
    end
  end)
  if not ok then
    log.warn("guest_sshd", errors.message(err), { vm = row.name })
    return false, errors.message(err)
  end
  return true
end

return M
