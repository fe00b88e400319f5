--- banger.egress: egress allow-lists (docs/networking.md, "Egress
-- allow-lists"). A VM with a list (its row's allow_hosts) resolves names
-- only through this resolver: a background `banger dns egress`, one per
-- user, listening on the bridge's address at network.dns's port, to which
-- nftables redirects every DNS query the VM sends. It answers an allowed
-- name by forwarding the query upstream and refuses every other name; the
-- answer's IPv4 addresses go into the VM's nftables set (the only
-- addresses it may reach) before the answer is sent back, with the
-- record's TTL, clamped, as their timeout.
local config = require("banger.config")
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local log = require("banger.log")
local state = require("banger.state")

local M = {}

-- A set element lives the answer's TTL, within these bounds: a TTL of 0
-- would expire before the guest connects, a huge one would keep an address
-- open long after the name moved. Answers' TTLs are capped at max_ttl too,
-- so the guest never uses an address longer than it stays in the set.
M.min_ttl, M.max_ttl = 30, 3600
M.upstream_timeout_ms = 2000
M.idle_exit_s = 60

local function dns()
  return require("banger.native.dns")
end

--- The VM's allow-list (a JSON array, empty for none).
function M.patterns(row)
  local ok, list = pcall(json.decode, row.allow_hosts or "[]")
  local out = json.array()
  for _, p in ipairs(ok and type(list) == "table" and list or {}) do
    out[#out + 1] = p
  end
  return out
end

--- Whether VM `row` has an allow-list.
function M.enabled(row)
  return #M.patterns(row) > 0
end

--- Where the resolver listens: the bridge's address, network.dns's port.
function M.address()
  local net = config.get().network
  return net.bridge_ip, tonumber(net.dns:match(":(%d+)$"))
end

function M.lock_path()
  return state.layout().runtime .. "/egress-dns.lock"
end

--- The TTL an answer's addresses get in the set (and the guest's cache).
function M.clamp_ttl(ttl)
  return math.max(M.min_ttl, math.min(M.max_ttl, ttl))
end

--- The answer to one query `packet` from `peer_ip` (bytes; "" for none).
-- ctx.vm(ip) -> the allow-listed VM row at that address, or nil;
-- ctx.upstreams: the servers to forward to ("ip" or "ip:port");
-- ctx.allow(row, addresses, ttl): opens the addresses to the VM (raises on
-- failure, and then the guest gets SERVFAIL, never an unreachable address).
function M.answer(packet, peer_ip, ctx)
  local q = dns().question(packet)
  if not q then
    return dns().refused(packet)
  end
  local row = ctx.vm(peer_ip)
  if not row then
    log.warn("egress", "refused name " .. q.name .. " for " .. peer_ip .. ", which is no allow-listed VM of ours",
      { name = q.name, client = peer_ip })
    return dns().refused(packet)
  end
  if not dns().host_allowed(M.patterns(row), q.name) then
    log.warn("egress", "refused name " .. q.name .. " for VM " .. row.name, { vm = row.name, name = q.name })
    return dns().refused(packet)
  end
  local reply, msg = dns().forward(packet, ctx.upstreams, M.upstream_timeout_ms)
  if not reply then
    log.warn("egress", "no answer from upstream for " .. q.name .. ": " .. tostring(msg), { vm = row.name })
    return dns().servfail(packet)
  end
  reply = dns().cap_ttls(reply, M.max_ttl)
  local a = dns().answer(reply, q.name)
  if a and #a.addresses > 0 then
    local by_ttl = {}
    for _, r in ipairs(a.addresses) do
      local ttl = M.clamp_ttl(r.ttl)
      by_ttl[ttl] = by_ttl[ttl] or {}
      table.insert(by_ttl[ttl], r.address)
    end
    for ttl, addresses in pairs(by_ttl) do
      local ok, err = pcall(ctx.allow, row, addresses, ttl)
      if not ok then
        log.warn("egress", "could not open " .. table.concat(addresses, ",") .. " for VM " .. row.name .. ": "
          .. errors.message(err), { vm = row.name, name = q.name })
        return dns().servfail(packet)
      end
    end
    local shown = {}
    for _, r in ipairs(a.addresses) do
      shown[#shown + 1] = r.address
    end
    log.info("egress", "allowed " .. q.name .. " for VM " .. row.name,
      { vm = row.name, name = q.name, addresses = table.concat(shown, ",") })
  end
  return reply
end

--- The allow-listed VM at guest address `ip` in this user's state, or nil.
function M.vm_at(ip)
  return state.db():query("SELECT * FROM vms WHERE ip = ? AND allow_hosts != '[]'", ip)[1]
end

--- Opens `addresses` to VM `row` for `ttl` seconds (the root helper's
-- egress_allow).
function M.allow(row, addresses, ttl)
  require("banger.priv").call("egress_allow",
    { tap = require("banger.net").tap_name(row), addresses = addresses, ttl = ttl })
end

local function busy()
  return state.db():query("SELECT COUNT(*) AS n FROM vms WHERE state = 'running' AND allow_hosts != '[]'")[1].n > 0
end

--- Serves until no allow-listed VM has run for `idle_s` seconds. Returns
-- false when another resolver of ours already runs.
function M.serve(opts)
  opts = opts or {}
  local host, port = M.address()
  -- Bound before the lock is taken: a resolver that holds the lock is one
  -- that listens (ensure_running waits for exactly that).
  local listener <close> = errors.check(dns().udp_listen(host, opts.port or port))
  local lock <close> = fs.lock(M.lock_path(), { timeout_ms = 0 })
  if not lock then
    return false
  end
  if opts.on_ready then
    opts.on_ready(listener:port())
  end
  local ctx = { vm = M.vm_at, upstreams = require("banger.net").nameservers(), allow = M.allow }
  require("banger.daemon").serve_until_idle(function()
    local ok, packet, ip, peer_port = pcall(listener.receive, listener, 1000)
    errors.check_interrupted()
    if ok and packet then
      local answered, reply = pcall(M.answer, packet, ip, ctx)
      if not answered then
        log.warn("egress", "query failed: " .. errors.message(reply))
        reply = dns().servfail(packet)
      end
      if reply ~= "" then
        listener:send(reply, ip, peer_port)
      end
    end
  end, busy, opts.idle_s or M.idle_exit_s)
  return true
end

--- Whether a resolver of ours is running now.
function M.running()
  return require("banger.daemon").running(M.lock_path())
end

--- Starts the resolver in the background unless one runs, and waits until
-- it listens: an allow-listed VM must not boot before its resolver does.
function M.ensure_running()
  if M.running() then
    return
  end
  local sys = require("banger.native.sys")
  local log_path = state.layout().runtime .. "/egress-dns.err"
  require("banger.native.proc").spawn({ sys.exe(), "dns", "egress", detach = true, stdin = "null", stdout = "null",
    stderr = { file = log_path } })
  local deadline = sys.monotonic_ms() + 15000
  while not M.running() do
    if sys.monotonic_ms() > deadline then
      local why = (fs.read(log_path) or ""):gsub("%s+$", "")
      errors.raise("ETIMEDOUT", "the egress resolver did not start" .. (why ~= "" and (": " .. why) or ""))
    end
    sys.sleep_ms(50)
  end
end

--- Host side of VM `row`'s allow-list, after its tap and NAT exist and
-- before the hypervisor starts: the resolver, then the rules (recorded in
-- its host objects first; net.remove_nat removes them with the NAT).
function M.attach(row, tap)
  require("banger.host_objects").record(row, "egress", tap)
  M.ensure_running()
  local _, port = M.address()
  require("banger.priv").call("ensure_egress",
    { tap = tap, guest_ip = row.ip, bridge = config.get().network.bridge, resolver_port = port })
end

return M
