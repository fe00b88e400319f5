--- banger.net: guest networking policy. Each VM with networking gets a
-- guest address from the bridge's subnet (allocated inside the create
-- transaction, so concurrent creates never collide), a tap named after its
-- id on banger's bridge, a MAC derived from its id, and optional NAT. The
-- host side is made through banger.priv; the guest side is applied by
-- banger's init from the kernel command line (ip=, banger.dns=).
local config = require("banger.config")
local errors = require("banger.errors")
local log = require("banger.log")
local priv = require("banger.priv")
local fs = require("banger.native.fs")
local validate = require("banger.native.validate")

local M = {}

local function to_ip(n)
  return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end
M.to_ip = to_ip

--- The tap of a VM: derived from its id, so teardown finds it even when
-- the VM's handles are lost.
function M.tap_name(row)
  return validate.tap_prefix .. row.id:sub(1, 15 - #validate.tap_prefix)
end

--- The mark this banger home puts on its taps (the helper sets the tap's
-- alias to banger:<tag>): the first 16 hex digits of the sha256 of the
-- state directory. One uid may run several homes (the tests do, a system
-- install next to a user's own), and the orphan census of one must never
-- take a tap another is about to hand to its hypervisor.
function M.home_tag()
  local layout = require("banger.state").layout()
  return require("banger.native.sys").sha256(layout.state):sub(1, 16)
end

--- Whether new VMs get a network: config network.mode "on" requires it,
-- "off" never, "auto" when privileged operations are possible here.
function M.enabled()
  local mode = config.get().network.mode
  if mode == "off" then
    return false
  end
  local how, why = priv.mode()
  if how then
    return true
  end
  if mode == "on" then
    errors.raise("EPERM", "network.mode is 'on' but " .. why .. " (see docs/privileges.md)")
  end
  if not M.warned then
    M.warned = true
    require("banger.ui").warn("VMs get no network: " .. why .. "; they are reachable through the agent only")
  end
  return false
end

--- The usable host addresses of the guest subnet, as integers: the subnet
-- minus its network and broadcast addresses and the bridge's own.
function M.subnet()
  local net = config.get().network
  local bridge = validate.ipv4(net.bridge_ip)
  local size = 1 << (32 - net.cidr)
  local base = bridge & ~(size - 1) & 0xffffffff
  local first, last = base + 1, base + size - 2
  if net.cidr >= 31 then
    first, last = base, base + size - 1 -- RFC 3021 point-to-point
  end
  return { bridge = bridge, first = first, last = last }
end

--- Picks the lowest free guest address; call inside the create transaction.
function M.allocate_ip(db)
  local used = {}
  for _, r in ipairs(db:query("SELECT ip FROM vms WHERE ip IS NOT NULL")) do
    used[validate.ipv4(r.ip)] = true
  end
  local s = M.subnet()
  for n = s.first, s.last do
    if n ~= s.bridge and not used[n] then
      return to_ip(n)
    end
  end
  local net = config.get().network
  errors.raise("ENOSPC", string.format("no free guest address left in %s/%d (%d VMs hold them all); delete VMs or widen network.cidr",
    net.bridge_ip, net.cidr, s.last - s.first))
end

local function is_loopback(ip)
  return ip:match("^127%.") ~= nil or ip == "0.0.0.0"
end

local function nameservers_in(path)
  local content = fs.read(path)
  local out = {}
  for ip in (content or ""):gmatch("\n?%s*nameserver%s+([%d%.]+)") do
    if validate.ipv4(ip) and not is_loopback(ip) then
      out[#out + 1] = ip
    end
  end
  return out
end

--- The resolvers a NAT'd guest should use: network.nameservers when set,
-- else the host's upstream servers. Never a loopback address: a guest
-- asking 127.0.0.53 would ask itself. When the host's resolv.conf points
-- at systemd-resolved's stub, its upstream list is read instead.
function M.nameservers()
  local configured = config.get().network.nameservers
  if #configured > 0 then
    return configured
  end
  for _, path in ipairs({ "/etc/resolv.conf", "/run/systemd/resolve/resolv.conf" }) do
    local found = nameservers_in(path)
    if #found > 0 then
      return found
    end
  end
  return {}
end

--- Kernel command-line words for the guest side of the network.
function M.kernel_args(row)
  if not row.ip then
    return {}
  end
  local net = config.get().network
  local mask = to_ip((0xffffffff << (32 - net.cidr)) & 0xffffffff)
  local args = { string.format("ip=%s::%s:%s:%s:eth0:off", row.ip, net.bridge_ip, mask, row.name) }
  if require("banger.egress").enabled(row) then
    -- every query goes to banger's resolver (nftables redirects port 53 to it)
    args[#args + 1] = "banger.dns=" .. net.bridge_ip
  elseif row.nat == 1 or row.nat == true then
    local servers = M.nameservers()
    if #servers == 0 then
      log.warn("net", "no usable upstream nameserver on this host; set network.nameservers", { vm = row.name })
    else
      args[#args + 1] = "banger.dns=" .. table.concat(servers, ",")
    end
  end
  return args
end

--- Host side, before the hypervisor starts: bridge, tap, NAT. Adds the NIC
-- to the launch spec. For QEMU the tap is handed over as an open descriptor
-- (the hypervisor then needs no access to /dev/net/tun, which is 0600 on
-- many hosts); the returned handle must be closed once QEMU has it. The tap
-- and the NAT rules are recorded in the VM's row before they are made
-- (banger.host_objects); the bridge is shared by every VM and is not one
-- VM's to remove.
function M.attach(row, spec)
  if not row.ip then
    return nil
  end
  local objects = require("banger.host_objects")
  local net = config.get().network
  local tap = M.tap_name(row)
  priv.call("ensure_bridge", { bridge = net.bridge, ip = net.bridge_ip, prefix = net.cidr })
  objects.record(row, "tap", tap)
  local fd
  local request = { tap = tap, bridge = net.bridge, home = M.home_tag() }
  if row.driver == "qemu" then
    fd = select(2, priv.call("open_tap", request))
  else
    priv.call("create_tap", request)
  end
  if row.nat == 1 or row.nat == true then
    M.enable_nat(row)
  end
  local egress = require("banger.egress")
  if egress.enabled(row) then
    egress.attach(row, tap)
  end
  spec.nics = spec.nics or {}
  spec.nics[#spec.nics + 1] = { id = "net0", tap = tap, mac = row.mac, fd = fd }
  return fd
end

--- Removes the NAT rules tagged with `tap` (banger's nftables table and the
-- Docker accept rules). Idempotent.
function M.remove_nat(tap)
  priv.call("remove_nat", { tap = tap })
end

--- Gives VM `row` (one with an address) outbound NAT through its tap,
-- recorded in its host objects before the rules are made, as at start, so
-- a stop or a crash's reconcile removes them (banger.host_objects).
function M.enable_nat(row)
  local objects = require("banger.host_objects")
  local tap = M.tap_name(row)
  objects.record(row, "nat", tap)
  priv.call("ensure_nat", { tap = tap, guest_ip = row.ip, bridge = config.get().network.bridge })
end

--- Removes VM `row`'s NAT rules, then their record. Idempotent.
function M.disable_nat(row)
  local objects = require("banger.host_objects")
  M.remove_nat(objects.get(row).nat or M.tap_name(row))
  objects.forget(row, "nat")
end

--- Deletes tap `tap` if it exists. Idempotent.
function M.delete_tap(tap)
  priv.call("delete_tap", { tap = tap })
end

--- A tap's owner uid, whether a process has it open (a hypervisor
-- attached to it) and the home tag of its alias (nil without banger's
-- mark), from sysfs; nil when `name` is not a tun/tap device.
function M.tap_info(name)
  local dir = "/sys/class/net/" .. name
  if not fs.exists(dir .. "/tun_flags") then
    return nil
  end
  local owner = tonumber((fs.read(dir .. "/owner") or ""):match("%-?%d+"))
  -- carrier is 1 while a queue is attached; reading it fails on a link that is down
  local carrier = fs.read(dir .. "/carrier")
  local alias = (fs.read(dir .. "/ifalias") or ""):gsub("%s+$", "")
  local home = alias:sub(1, #validate.home_mark_prefix) == validate.home_mark_prefix
    and alias:sub(#validate.home_mark_prefix + 1) or nil
  return { owner = owner, attached = carrier ~= nil and carrier:match("^1") ~= nil, home = home }
end

--- The tun/tap devices named with banger's prefix in this network namespace.
function M.banger_taps()
  local out = {}
  for _, name in ipairs(fs.list("/sys/class/net") or {}) do
    if name:sub(1, #validate.tap_prefix) == validate.tap_prefix then
      local info = M.tap_info(name)
      if info then
        info.name = name
        out[#out + 1] = info
      end
    end
  end
  return out
end

return M
