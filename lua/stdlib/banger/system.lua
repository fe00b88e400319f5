--- banger.system: the system install. One hardened systemd unit runs the
-- root helper for one owner; the owner's banger talks to it over
-- /run/banger/helper.sock. Everything written is recorded in an install
-- record so uninstall removes exactly that (docs/privileges.md).
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local proc = require("banger.native.proc")
local sys = require("banger.native.sys")
local validate = require("banger.native.validate")

local M = {}

M.unit_name = "banger-helper.service"
M.socket = "/run/banger/helper.sock"

--- Paths under `root` ("" for the real system; a directory for packaging
-- and tests).
function M.paths(root)
  root = root or ""
  return {
    unit = root .. "/etc/systemd/system/" .. M.unit_name,
    record = root .. "/etc/banger/install.json",
    record_dir = root .. "/etc/banger",
  }
end

--- The helper binary shipped with this banger: beside it in a build tree,
-- ../sbin/ or ../libexec/banger/ when installed.
function M.helper_binary()
  local exe = sys.exe()
  local dir = exe:match("^(.*)/[^/]+$")
  for _, candidate in ipairs({ dir .. "/banger-helper", dir .. "/../sbin/banger-helper",
    dir .. "/../libexec/banger/banger-helper" }) do
    if fs.exists(candidate) then
      return fs.realpath and fs.realpath(candidate) or candidate
    end
  end
  errors.raise("ENOENT", "banger-helper was not found beside " .. exe .. " (build or install it first)")
end

--- uid, gid and home of a user given by name or number.
function M.user(spec)
  local r = errors.check(proc.run({ "getent", "passwd", tostring(spec) }))
  if r.code ~= 0 then
    errors.raise("ENOENT", "no such user: " .. tostring(spec))
  end
  local name, _, uid, gid, _, home = r.stdout:match("^([^:]*):([^:]*):(%d+):(%d+):([^:]*):([^:]*):")
  return { name = name, uid = tonumber(uid), gid = tonumber(gid), home = home }
end

--- The unit text. Each hardening line is there for a reason; the helper
-- needs CAP_NET_ADMIN (links, taps, nftables), CAP_CHOWN and CAP_FOWNER
-- (handing its socket directory to the owner), CAP_SETUID, CAP_SETGID and
-- CAP_KILL (isolated hypervisors: started as, and signalled across, uids
-- of their own), /dev/net/tun and /dev/kvm (the hypervisors inherit the
-- device policy), and write access only to its two runtime directories.
-- ProtectKernelTunables is left off because NAT must turn on
-- net.ipv4.ip_forward; MemoryDenyWriteExecute because the hypervisors it
-- launches inherit it and QEMU's TCG translator executes code it wrote.
-- KillMode=process: a restart of the helper must not take running VMs
-- with it.
function M.unit(helper, owner)
  return table.concat({
    "# Written by `banger system install`; removed by `banger system uninstall`.",
    "[Unit]",
    "Description=banger root helper (bridges, taps, NAT for " .. owner.name .. "'s microVMs)",
    "After=network.target",
    "",
    "[Service]",
    "Type=simple",
    string.format("ExecStart=%s --socket %s --owner %d:%d", helper, M.socket, owner.uid, owner.gid),
    "Restart=on-failure",
    "UMask=0077",
    "RuntimeDirectory=banger banger-root",
    "RuntimeDirectoryMode=0700",
    "NoNewPrivileges=yes",
    "KillMode=process",
    "CapabilityBoundingSet=CAP_NET_ADMIN CAP_CHOWN CAP_FOWNER CAP_SETUID CAP_SETGID CAP_KILL",
    "AmbientCapabilities=",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "DevicePolicy=closed",
    "DeviceAllow=/dev/net/tun rw",
    "DeviceAllow=/dev/kvm rw",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  }, "\n")
end

local function systemd_running()
  return fs.exists("/run/systemd/system")
end
M.systemd_running = systemd_running

local function systemctl(...)
  local r = errors.check(proc.run({ "systemctl", ... }))
  if r.code ~= 0 then
    errors.raise("ESYSTEMD", "systemctl " .. table.concat({ ... }, " ") .. ": " .. (r.stderr:gsub("%s+$", "")))
  end
  return r.stdout
end

--- The install record, or nil when banger is not installed under `root`.
function M.record(root)
  local text = fs.read(M.paths(root).record)
  return text and json.decode(text) or nil
end

--- Installs for `owner` (a user spec); opts: root, start.
function M.install(owner_spec, opts)
  local owner = M.user(owner_spec)
  if owner.uid == 0 then
    errors.raise("EINVAL", "the owner must be an ordinary user (root runs banger without the helper)")
  end
  local helper = M.helper_binary()
  -- Root will run this file for as long as the unit exists: whoever could
  -- write it could run anything as root.
  errors.check(validate.root_executable(helper))
  local p = M.paths(opts.root)
  errors.check(fs.mkdir(p.unit:match("^(.*)/"), 493, true))
  errors.check(fs.mkdir(p.record_dir, 493, true))
  errors.check(fs.write_atomic(p.unit, M.unit(helper, owner), 420))
  local record = {
    owner = owner.name, owner_uid = owner.uid, owner_gid = owner.gid, owner_home = owner.home,
    helper = helper, socket = M.socket, unit = p.unit, version = sys.build().version,
    installed_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }
  errors.check(fs.write_atomic(p.record, json.encode(record) .. "\n", 420))
  record.started = false
  if opts.start and (opts.root or "") == "" then
    if systemd_running() then
      systemctl("daemon-reload")
      -- restart, not start: a helper already running is the old binary
      -- (after an update), and must give way to the unit just written
      systemctl("enable", M.unit_name)
      systemctl("restart", M.unit_name)
      record.started = true
    else
      record.note = "systemd is not running here: the unit is written but not started"
    end
  end
  return record
end

--- What is installed and whether the helper answers on `socket` (default:
-- the install record's, else M.socket).
function M.status(root, socket)
  local record = M.record(root)
  local s = { installed = record ~= nil, record = record, socket = socket or M.socket }
  if record then
    s.socket = socket or record.socket
    if systemd_running() and (root or "") == "" then
      s.unit_state = (proc.run({ "systemctl", "is-active", M.unit_name }).stdout:gsub("%s+$", ""))
    end
  end
  local ok, res = pcall(function()
    return errors.check(require("banger.native.priv").call_helper(s.socket, "ping", {}))
  end)
  s.helper_reachable = ok
  if ok then
    s.helper = res
  else
    s.helper_error = errors.message(res)
  end
  return s
end

local function remove_dirs(dirs, removed)
  for _, dir in ipairs(dirs) do
    if fs.exists(dir) then
      fs.remove_tree(dir)
      removed[#removed + 1] = dir
    end
  end
end

--- Removes what install wrote and what the helper made on the host: the
-- unit, the record, banger's bridges, NAT rules and runtime directories.
-- With purge, also the owner's banger state and cache (config is the
-- user's own writing and is kept).
function M.uninstall(opts)
  local record = M.record(opts.root)
  local p = M.paths(opts.root)
  local removed = {}
  if (opts.root or "") == "" and systemd_running() and fs.exists(p.unit) then
    pcall(systemctl, "disable", "--now", M.unit_name)
  end
  for _, path in ipairs({ p.unit, p.record }) do
    if fs.exists(path) then
      errors.check(fs.remove(path))
      removed[#removed + 1] = path
    end
  end
  if (opts.root or "") == "" then
    if systemd_running() then
      pcall(systemctl, "daemon-reload")
    end
    local priv = require("banger.priv")
    local links, why = proc.run({ "ip", "-j", "link", "show", "type", "bridge" })
    if not links then
      errors.raise("ENOENT", "cannot list banger's bridges to remove them: ip: " .. why, { hint = "apt-get install iproute2" })
    end
    for _, l in ipairs(links.code == 0 and json.decode(links.stdout) or {}) do
      if validate.bridge_name(l.ifname) then
        pcall(priv.call, "unroute_vm_dns", { bridge = l.ifname })
        priv.call("delete_bridge", { bridge = l.ifname })
        removed[#removed + 1] = "bridge " .. l.ifname
      end
    end
    local nat = priv.call("flush_nat", {})
    if nat.removed > 0 then
      removed[#removed + 1] = nat.removed .. " NAT rule(s)"
    end
    remove_dirs({ "/run/banger", "/run/banger-root" }, removed)
  end
  if opts.purge and record and record.owner_home then
    remove_dirs({ record.owner_home .. "/.local/state/banger", record.owner_home .. "/.cache/banger" }, removed)
  end
  return { removed = removed, was_installed = record ~= nil }
end

return M
