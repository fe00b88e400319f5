--- banger.status: one view of this banger and what it has on this host,
-- for `banger status`. Each part is read on its own: one that cannot be
-- read (an unreadable directory, a database that does not open) is nil and
-- its error is listed, and the other parts are still there. Nothing here
-- boots a VM, reaches the network or writes anything (beyond what opening
-- the state store does on a fresh home); the doctor's summary leaves out
-- the checks marked slow. Disk use is allocated bytes (st_blocks), each
-- file counted once (hard links share one inode), so sparse files count
-- what they hold and a layer linked into two places counts once.
local config = require("banger.config")
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local proc = require("banger.native.proc")
local state = require("banger.state")
local sys = require("banger.native.sys")

local M = {}

--- The parts, in the order they are read and printed.
M.parts = { "helper", "dns", "bridge", "vms", "kernels", "images", "snapshots", "cache", "doctor" }

--- The VM states, as the store knows them (engine/store/schema.cpp).
M.vm_states = { "creating", "created", "starting", "running", "stopping", "stopped", "error" }

-- One walk below `dir`, adding each inode's allocated bytes once.
local function walk(dir, seen, acc)
  local names, why, code = fs.list(dir)
  if not names then
    errors.raise(code or "EIO", why)
  end
  for _, name in ipairs(names) do
    local path = dir .. "/" .. name
    local st, swhy, scode = fs.lstat(path)
    if not st then
      -- a file removed while we walk (a pull, a prune) is simply gone
      if scode ~= "ENOENT" then
        errors.raise(scode or "EIO", swhy)
      end
    else
      local key = st.dev .. ":" .. st.ino
      if not seen[key] then
        seen[key] = true
        acc.bytes = acc.bytes + st.blocks_bytes
        if st.type == "file" then
          acc.files = acc.files + 1
        end
      end
      if st.type == "directory" then
        walk(path, seen, acc)
      end
    end
  end
  return acc
end

--- What `dir` and the files below it occupy on disk: { bytes, files }, as
-- `du -s --block-size=1` counts: allocated bytes (st_blocks × 512), each
-- inode once (hard links, the same layer under two names), directories
-- included, symlinks not followed. A missing `dir` is empty; an unreadable
-- one raises.
---@param dir string
---@return { bytes: integer, files: integer }
function M.disk_use(dir)
  local st, why, code = fs.stat(dir)
  if not st then
    if code == "ENOENT" then
      return { bytes = 0, files = 0 }
    end
    errors.raise(code or "EIO", why)
  end
  if st.type ~= "directory" then
    errors.raise("ENOTDIR", dir .. " is not a directory")
  end
  return walk(dir, { [st.dev .. ":" .. st.ino] = true }, { bytes = st.blocks_bytes, files = 0 })
end

-- The root helper: installed, answering, and whether it fits this banger:
-- the request protocol decides (a helper too old to report one does not).
local function helper_part()
  local priv = require("banger.priv")
  local build = sys.build()
  local s = require("banger.system").status(nil, priv.helper_socket())
  local mode = priv.mode()
  local out = {
    mode = mode or "none",
    installed = s.installed,
    socket = s.socket,
    service = s.unit_state,
    answering = s.helper_reachable,
    error = s.helper_error,
  }
  if s.helper_reachable then
    local h = s.helper
    out.pid, out.version, out.commit, out.protocol = h.pid, h.version, h.commit, h.helper_protocol
    out.same_build = h.version == build.version and h.commit == build.commit
    out.compatible = h.helper_protocol == build.helper_protocol
    if not out.compatible then
      -- install points the unit at this banger's helper and (re)starts it
      out.fix = "sudo banger system install"
    end
  elseif s.installed then
    out.fix = "sudo banger system restart"
  elseif mode ~= "local-root" and config.get().network.mode ~= "off" then
    out.fix = "sudo banger system install"
  end
  return out
end

local function dns_part()
  local st = require("banger.dns").status()
  return { running = st.running, address = st.address, names = #st.names }
end

-- Bridge state from sysfs; its IPv4 addresses from `ip` (netlink has them,
-- sysfs does not).
local function bridge_part()
  local net = config.get().network
  local out = { name = net.bridge, expected = net.bridge_ip .. "/" .. net.cidr, exists = false, addresses = {} }
  local dir = "/sys/class/net/" .. net.bridge
  if not fs.exists(dir) then
    return out
  end
  out.exists = true
  out.is_bridge = fs.exists(dir .. "/bridge")
  local flags = tonumber((fs.read(dir .. "/flags") or ""):match("0x%x+") or "")
  out.up = flags ~= nil and flags & 1 == 1
  local r, why = proc.run({ "ip", "-j", "-4", "addr", "show", "dev", net.bridge })
  if not r then
    errors.raise("ENOTOOL", "cannot read " .. net.bridge .. "'s addresses: ip: " .. tostring(why),
      { hint = "apt-get install iproute2" })
  end
  if r.code ~= 0 then
    errors.raise("EFAIL", "ip addr show dev " .. net.bridge .. ": " .. (r.stderr:gsub("%s+$", "")))
  end
  for _, link in ipairs(json.decode(r.stdout)) do
    for _, a in ipairs(link.addr_info or {}) do
      out.addresses[#out.addresses + 1] = a["local"] .. "/" .. a.prefixlen
    end
  end
  return out
end

local function vms_part()
  local by_state = {}
  for _, s in ipairs(M.vm_states) do
    by_state[s] = 0
  end
  local db = state.db()
  local total = 0
  for _, r in ipairs(db:query("SELECT state, COUNT(*) AS n FROM vms GROUP BY state")) do
    by_state[r.state] = r.n
    total = total + r.n
  end
  local running = {}
  for _, r in ipairs(db:query("SELECT name FROM vms WHERE state = 'running' ORDER BY name")) do
    running[#running + 1] = r.name
  end
  return { total = total, by_state = by_state, running = running }
end

local function kernels_part()
  local kernels = require("banger.kernels")
  local dir = kernels.dir()
  local use = M.disk_use(dir) -- first: an unreadable directory is this part's error
  local listed = errors.check(require("banger.native.kernel").list(dir))
  return { dir = dir, count = #listed, bytes = use.bytes }
end

local function images_part()
  local dir = require("banger.images").dir()
  local use = M.disk_use(dir)
  local n = state.db():query("SELECT COUNT(*) AS n FROM images")[1].n
  return { dir = dir, count = n, bytes = use.bytes }
end

local function snapshots_part()
  local dir = require("banger.snapshots").root()
  local use = M.disk_use(dir)
  local n = state.db():query("SELECT COUNT(*) AS n FROM snapshots WHERE state = 'ready'")[1].n
  return { dir = dir, count = n, bytes = use.bytes }
end

-- The OCI blob cache (image pulls); its count is the files in it (blobs).
local function cache_part()
  local dir = state.layout().cache .. "/oci"
  local use = M.disk_use(dir)
  return { dir = dir, count = use.files, bytes = use.bytes }
end

-- The doctor's checks without the slow ones (they run processes or scan
-- the host); which were left out is part of the answer.
local function doctor_part()
  local doctor = require("banger.doctor")
  local checks, left_out = {}, {}
  for _, c in ipairs(doctor.default_checks()) do
    if c.slow then
      left_out[#left_out + 1] = c.name
    else
      checks[#checks + 1] = c
    end
  end
  local report = doctor.run({ checks = checks })
  local out = { ok = 0, warnings = 0, failures = 0, skipped = 0, left_out = left_out }
  for _, c in ipairs(report.checks) do
    local key = ({ ok = "ok", warn = "warnings", fail = "failures", skip = "skipped" })[c.status]
    out[key] = out[key] + 1
  end
  return out
end

local readers = {
  helper = helper_part, dns = dns_part, bridge = bridge_part, vms = vms_part, kernels = kernels_part,
  images = images_part, snapshots = snapshots_part, cache = cache_part, doctor = doctor_part,
}

--- Reads every part: { build = sys.build(), <part> = table or nil, ...,
-- errors = { { part, error }, ... } } (record `status`). A part that
-- raises is nil and its message is in `errors`; Ctrl-C still raises.
---@return table
function M.collect()
  local out = { build = sys.build(), errors = {} }
  for _, part in ipairs(M.parts) do
    local ok, res = pcall(readers[part])
    errors.check_interrupted()
    if ok then
      out[part] = res
    else
      out.errors[#out.errors + 1] = { part = part, error = errors.message(res) }
    end
  end
  return out
end

return M
