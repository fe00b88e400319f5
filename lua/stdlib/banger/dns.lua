--- banger.dns: the responder for <vm>.vm names. banger has no daemon, so
-- the responder is a background `banger dns serve` started when a VM with
-- an address starts; one per user (a lock in the runtime dir), answering
-- from the state DB on every query (so it is never stale), and exiting by
-- itself once no VM has been running for a while.
local config = require("banger.config")
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local log = require("banger.log")
local state = require("banger.state")

local M = {}

M.idle_exit_s = 60

--- host, port of network.dns ("127.0.0.1:42069").
function M.address()
  local host, port = config.get().network.dns:match("^([%d%.]+):(%d+)$")
  return host, tonumber(port)
end

function M.lock_path()
  return state.layout().runtime .. "/dns.lock"
end

--- The address of a running VM called `name`, or nil.
function M.lookup(name)
  local row = state.db():query("SELECT ip FROM vms WHERE name = ? AND state = 'running' AND ip IS NOT NULL", name)[1]
  return row and row.ip or nil
end

--- What the responder answers now: { running = bool, address = "host:port",
-- names = { {name = "<vm>.vm", ip = ...}, ... } } (running VMs with an address, by name).
---@return { running: boolean, address: string, names: { name: string, ip: string }[] }
function M.status()
  local host, port = M.address()
  local names = state.db():query(
    "SELECT name || '.vm' AS name, ip FROM vms WHERE state = 'running' AND ip IS NOT NULL ORDER BY name")
  return { running = M.running(), address = host .. ":" .. port, names = names }
end

local function running_count()
  return state.db():query("SELECT COUNT(*) AS n FROM vms WHERE state = 'running' AND ip IS NOT NULL")[1].n
end

--- Serves until no VM has run for `idle_s` seconds (or the state DB is
-- gone). Returns false when another responder of ours already runs.
function M.serve(opts)
  opts = opts or {}
  local lock <close> = fs.lock(M.lock_path(), { timeout_ms = 0 })
  if not lock then
    return false
  end
  local host, port = M.address()
  local server <close> = errors.check(require("banger.native.dns").listen(host, opts.port or port))
  if opts.on_ready then
    opts.on_ready(server:port())
  end
  require("banger.daemon").serve_until_idle(function()
    local ok, err = pcall(server.serve_once, server, 1000, M.lookup)
    -- SIGTERM/SIGINT: serve_once wakes at once; the pcall must not keep us.
    errors.check_interrupted()
    if not ok then
      log.warn("dns", "lookup failed: " .. errors.message(err))
    end
  end, function()
    return running_count() > 0
  end, opts.idle_s or M.idle_exit_s)
  return true
end

--- Whether a responder of ours is running now.
function M.running()
  return require("banger.daemon").running(M.lock_path())
end

--- Starts the responder in the background unless one runs. Never fails the
-- caller: a VM without DNS still works by address.
function M.ensure_running()
  local ok, err = pcall(function()
    if M.running() then
      return
    end
    local sys = require("banger.native.sys")
    local argv = { sys.exe(), "dns", "serve", detach = true, stdin = "null", stdout = "null", stderr = "null" }
    require("banger.native.proc").spawn(argv)
  end)
  if ok then
    -- Where systemd-resolved runs, route ~vm on banger's bridge to the
    -- responder (docs/dns-routing.md); elsewhere this reports why not.
    local net = config.get().network
    ok, err = pcall(require("banger.priv").call, "route_vm_dns", { bridge = net.bridge, resolver = net.dns })
  end
  if not ok then
    log.warn("dns", "could not start the DNS responder: " .. errors.message(err))
  end
end

return M
