--- banger.update: `banger update` from a signed release channel
-- (docs/install.md, "Updating").
--
-- A channel is a directory served over HTTP(S): latest.json(.sig) and
-- <version>/manifest.json(.sig) beside each version's bundle. A manifest
-- is trusted only once its Ed25519 signature over its exact bytes checks
-- against the release key (built in, or config update.public_key); only
-- then is it parsed. The bundle must have the manifest's size (reading
-- stops past it) and sha256 before it is unpacked.
--
-- An installed release lives under a prefix P:
--   P/lib/banger/versions/<version>/   one `cmake --install` tree each
--   P/lib/banger/current, previous     relative symlinks into versions/
-- A new version is unpacked into versions/<V>.partial-<random>, synced,
-- renamed to versions/<V>, asked for its version, and only then do
-- `previous` and `current` change, each by rename(2) of a new symlink.
-- What an update creates is named in versions/.journal.json before it is
-- created; the next update removes what a crashed one left.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local sys = require("banger.native.sys")

local M = {}

--- `update --check`'s exit statuses: 0 when a newer version is available,
-- 1 when this one is the newest, `check_failed` when the channel could not
-- be read or verified (usage errors stay 2, config errors 78).
M.check_exit = { available = 0, up_to_date = 1, check_failed = 3 }

local VERSION = "^(%d+)%.(%d+)%.(%d+)(%-?[%w%.]*)$"

--- Whether `v` is a release version (MAJOR.MINOR.PATCH[-PRE]).
---@param v any
---@return boolean
function M.valid_version(v)
  if type(v) ~= "string" then
    return false
  end
  local a, b, c, pre = v:match(VERSION)
  return a ~= nil and (pre == "" or pre:match("^%-[%w%.]+$") ~= nil) and not v:find("/", 1, true)
end

local function pre_parts(pre)
  local parts = {}
  for p in pre:gmatch("[^%.]+") do
    parts[#parts + 1] = p
  end
  return parts
end

--- -1, 0 or 1 as `a` is older than, the same as or newer than `b`, by
-- semantic versioning (a pre-release sorts before its release).
---@param a string
---@param b string
---@return integer
function M.compare(a, b)
  local a1, a2, a3, apre = a:match(VERSION)
  local b1, b2, b3, bpre = b:match(VERSION)
  if not a1 or not b1 then
    errors.raise("EINVAL", "not a version: " .. (a1 and b or a))
  end
  for _, pair in ipairs({ { a1, b1 }, { a2, b2 }, { a3, b3 } }) do
    local x, y = tonumber(pair[1]), tonumber(pair[2])
    if x ~= y then
      return x < y and -1 or 1
    end
  end
  if apre == bpre then
    return 0
  end
  if apre == "" or bpre == "" then
    return apre == "" and 1 or -1
  end
  local pa, pb = pre_parts(apre:sub(2)), pre_parts(bpre:sub(2))
  for i = 1, math.max(#pa, #pb) do
    local x, y = pa[i], pb[i]
    if x == nil or y == nil then
      return x == nil and -1 or 1
    end
    if x ~= y then
      local nx, ny = tonumber(x), tonumber(y)
      if nx and ny then
        return nx < ny and -1 or 1
      elseif nx or ny then
        return nx and -1 or 1 -- numeric identifiers sort first
      end
      return x < y and -1 or 1
    end
  end
  return 0
end

--- The channel URL, without a trailing slash: config update.channel, else
-- the one install.sh recorded in P/lib/banger/channel for a release install.
---@return string
local function channel()
  local url = require("banger.config").get().update.channel
  if not url then
    local prefix = sys.exe():match("^(.*)/lib/banger/versions/[^/]+/bin/banger$")
    local recorded = prefix and fs.read(prefix .. "/lib/banger/channel")
    url = recorded and recorded:match("^%s*(%S+)%s*$")
    if url and not (url:match("^https?://") or url:match("^file:///")) then
      errors.raise("EINVAL", prefix .. "/lib/banger/channel: not an http(s) or file URL: " .. url)
    end
  end
  if not url then
    errors.raise("ENOCHANNEL", "no update channel is configured", {
      hint = "set update.channel in config.lua; see docs/install.md" })
  end
  return (url:gsub("/+$", ""))
end

--- The PEM of the key manifests must be signed with: config
-- update.public_key (a file) when set, else the key built into banger.
---@return string pem, string source
local function public_key()
  local path = require("banger.config").get().update.public_key
  if path then
    path = path:gsub("^~/", (os.getenv("HOME") or "") .. "/")
    local pem, why = fs.read(path)
    if not pem then
      errors.raise("EKEY", "update.public_key: cannot read " .. path .. ": " .. tostring(why))
    end
    return pem, path
  end
  return require("banger.native.crypto").release_pubkey, "the release key built into banger"
end

--- The host's architecture in release names (amd64, arm64).
local function arch()
  local machine = sys.uname().machine
  return ({ x86_64 = "amd64", aarch64 = "arm64" })[machine] or machine
end

local function check_manifest(m, url)
  local function bad(why)
    errors.raise("EMANIFEST", url .. ": " .. why)
  end
  if type(m) ~= "table" then
    bad("not a JSON object")
  end
  if m.schema ~= 1 then
    bad("unknown manifest schema " .. tostring(m.schema) .. " (this banger reads schema 1)")
  end
  if not M.valid_version(m.version) then
    bad("bad version " .. tostring(m.version))
  end
  if math.type(m.helper_protocol) ~= "integer" then
    bad("helper_protocol is not an integer")
  end
  if type(m.artifacts) ~= "table" then
    bad("no artifacts")
  end
  for _, a in ipairs(m.artifacts) do
    if type(a) ~= "table" or type(a.url) ~= "string" or type(a.os) ~= "string" or type(a.arch) ~= "string"
      or math.type(a.size) ~= "integer" or a.size <= 0 or type(a.sha256) ~= "string"
      or not a.sha256:match("^%x+$") or #a.sha256 ~= 64 then
      bad("an artifact lacks url, os, arch, a positive size or a sha256")
    end
  end
end

--- The manifest at `url`, once `url`.sig is a good signature of its exact
-- bytes by the release key; nothing in it is read before that.
---@param url string
---@return table manifest (with `url` set to where it came from)
function M.fetch_manifest(url)
  local http = require("banger.native.http")
  local body = errors.check(http.fetch(url, { max_bytes = 1 << 20 }))
  local sig = errors.check(http.fetch(url .. ".sig", { max_bytes = 4096 }))
  local pem, key_source = public_key()
  local ok, why, code = require("banger.native.crypto").verify_ed25519(pem, body, sig)
  if not ok then
    if code == "EBADSIG" then
      errors.raise("EBADSIG", url .. " is not signed by the release key (" .. key_source .. "): refusing it", {
        hint = "a tampered manifest, or a channel signed with another key (config update.public_key)" })
    end
    errors.raise(code or "EKEY", why .. " (" .. key_source .. ")")
  end
  local decoded, manifest = pcall(json.decode, body)
  if not decoded then
    errors.raise("EMANIFEST", url .. ": not JSON")
  end
  check_manifest(manifest, url)
  manifest.url = url
  return manifest
end

--- This host's artifact in `m`.
local function artifact(m)
  local arch = arch()
  for _, a in ipairs(m.artifacts) do
    if a.os == "linux" and a.arch == arch then
      return a
    end
  end
  errors.raise("ENOENT", "release " .. m.version .. " has no bundle for linux/" .. arch)
end

--- What the channel offers against this banger.
---@return { current: string, available: string, update_available: boolean, channel: string, helper_protocol: integer }
function M.check()
  local channel = channel()
  local m = M.fetch_manifest(channel .. "/latest.json")
  local current = sys.build().version
  return { current = current, available = m.version, update_available = M.compare(m.version, current) > 0,
    channel = channel, helper_protocol = m.helper_protocol }
end

-- Where the running banger is installed. Refuses a build tree or a plain
-- `cmake --install`: those are updated by rebuilding or reinstalling.
---@return { prefix: string, root: string, versions: string, version: string }
local function find_layout()
  local exe = sys.exe()
  local prefix, version = exe:match("^(.*)/lib/banger/versions/([^/]+)/bin/banger$")
  if not prefix then
    local dir = exe:match("^(.*)/[^/]+$") or "."
    local how
    if fs.exists(dir .. "/CMakeCache.txt") or fs.exists(dir .. "/build.ninja") then
      how = "from a build tree (" .. dir .. "): update it with git pull and a rebuild"
    else
      how = "as " .. exe .. " (a plain `cmake --install`, not a release install): reinstall it the same way, "
        .. "or install a release with install.sh"
    end
    errors.raise("EINSTALL", "banger update only updates a release install (P/lib/banger/versions/<version>/bin/banger, "
      .. "made by install.sh); this banger runs " .. how)
  end
  local root = prefix .. "/lib/banger"
  return { prefix = prefix, root = root, versions = root .. "/versions", version = version }
end

local function random_hex()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(6)
  f:close()
  return (bytes:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

local function journal_path(layout)
  return layout.versions .. "/.journal.json"
end

-- Names what is about to be created, so a crash leaves it findable.
local function record(layout, paths)
  errors.check(fs.write_atomic(journal_path(layout), json.encode({ created = paths }) .. "\n", 420))
end

--- Removes what an interrupted update left: the paths its journal names,
-- and anything in versions/ or beside the links whose name marks it as
-- unfinished (.partial-, .new-, a hidden .tmp- of an atomic write).
-- Returns the paths removed.
---@param layout table from layout()
---@return string[]
local function cleanup(layout)
  local removed = {}
  local function drop(path)
    if fs.lstat(path) then
      errors.check(fs.remove_tree(path))
      removed[#removed + 1] = path
    end
  end
  local text = fs.read(journal_path(layout))
  local ok, j = pcall(json.decode, text or "{}")
  for _, p in ipairs(ok and type(j) == "table" and type(j.created) == "table" and j.created or {}) do
    -- only ever something inside this install's lib/banger
    if type(p) == "string" and p:sub(1, #layout.root + 1) == layout.root .. "/" and not p:find("/../", 1, true) then
      drop(p)
    end
  end
  for _, dir in ipairs({ layout.versions, layout.root }) do
    for _, name in ipairs(fs.list(dir) or {}) do
      if name:find(".partial-", 1, true) or name:match("^%.?[%w]+%.new%-") or name:match("%.partial$")
        or (name:sub(1, 1) == "." and name:find(".tmp-", 1, true)) then
        drop(dir .. "/" .. name)
      end
    end
  end
  if text then
    fs.remove(journal_path(layout))
  end
  return removed
end

local function link_version(layout, name)
  local target = fs.readlink(layout.root .. "/" .. name)
  return target and target:match("^versions/([^/]+)$")
end

--- The versions `current` and `previous` point at (nil when unset).
local function links(layout)
  return link_version(layout, "current"), link_version(layout, "previous")
end

-- Points root/name at versions/<version>: a new symlink renamed over the
-- old one, so the link is always the old target or the new one.
local function point(layout, name, version)
  local tmp = layout.root .. "/" .. name .. ".new-" .. random_hex()
  record(layout, { tmp })
  errors.check(fs.symlink("versions/" .. version, tmp))
  errors.check(fs.rename(tmp, layout.root .. "/" .. name))
end

--- What `bin/banger version --json` of an installed version says.
local function version_of(layout, version)
  local exe = layout.versions .. "/" .. version .. "/bin/banger"
  -- A clean environment: BANGER_LUA_DIR would make it load another tree.
  local r = errors.check(require("banger.native.proc").run({ exe, "version", "--json",
    env = { "PATH=" .. (os.getenv("PATH") or "/usr/bin:/bin"), "HOME=" .. (os.getenv("HOME") or "/") },
    timeout_ms = 30000 }))
  local ok, info = pcall(json.decode, r.stdout)
  if r.code ~= 0 or not ok or type(info) ~= "table" then
    errors.raise("EVERIFY", exe .. " version --json failed (exit " .. r.code .. "): " .. (r.stderr:gsub("%s+$", "")))
  end
  return info
end

--- What to do about the root helper before switching to a version whose
-- helper speaks `protocol` (docs/install.md, "The root helper"):
-- nil when no helper answers on config helper.socket or it speaks the
-- same protocol; raises EHELPER for a user who cannot reinstall it; for
-- root, returns the running helper's protocol (reinstall after the switch).
---@param protocol integer
---@param command string the command that would do it as root
local function helper_plan(protocol, command)
  local socket = require("banger.config").get().helper.socket
  local ok, res = pcall(function()
    return errors.check(require("banger.native.priv").call_helper(socket, "ping", {}))
  end)
  if not ok then
    return nil
  end
  local running = res.helper_protocol
  if running == protocol then
    return nil
  end
  if sys.geteuid() ~= 0 then
    errors.raise("EHELPER", string.format("the new version's root helper speaks protocol %d, the one running on %s "
      .. "speaks %s: switching alone would leave banger unable to talk to it; run: sudo %s && sudo banger system install",
      protocol, socket, tostring(running or "unknown (older than protocol 1)"), command))
  end
  return { running = running or 0, socket = socket }
end

-- As root, after the switch: the system install rewritten by the new
-- version (its unit names the new helper) and the service restarted.
local function reinstall_helper(layout, version, plan, system_root)
  local system = require("banger.system")
  local rec = system.record(system_root)
  if not rec then
    return "no system install record: restart the root helper on " .. plan.socket .. " with version " .. version
      .. "'s sbin/banger-helper"
  end
  local argv = { layout.versions .. "/" .. version .. "/bin/banger", "system", "install", "--owner",
    tostring(rec.owner_uid) }
  if system_root then
    argv[#argv + 1] = "--root"
    argv[#argv + 1] = system_root
  end
  local r = errors.check(require("banger.native.proc").run(argv))
  if r.code ~= 0 then
    errors.raise("EHELPER", "banger " .. version .. " system install failed: " .. (r.stderr:gsub("%s+$", "")))
  end
  if (system_root or "") == "" and system.systemd_running() then
    local s = errors.check(require("banger.native.proc").run({ "systemctl", "restart", system.unit_name }))
    if s.code ~= 0 then
      errors.raise("EHELPER", "systemctl restart " .. system.unit_name .. ": " .. (s.stderr:gsub("%s+$", "")))
    end
  end
  return nil
end

-- Versions kept: current, previous, and the one whose helper a system
-- install runs (its unit names that binary). Returns what was removed.
local function prune(layout, system_root)
  local keep = {}
  local current, previous = links(layout)
  for _, v in ipairs({ current, previous }) do
    keep[v] = true
  end
  local rec = require("banger.system").record(system_root)
  if rec and type(rec.helper) == "string" then
    local v = rec.helper:sub(1, #layout.versions + 1) == layout.versions .. "/"
      and rec.helper:sub(#layout.versions + 2):match("^([^/]+)/")
    if v then
      keep[v] = true
    end
  end
  local removed = {}
  for _, name in ipairs(fs.list(layout.versions) or {}) do
    if M.valid_version(name) and not keep[name] then
      errors.check(fs.remove_tree(layout.versions .. "/" .. name))
      removed[#removed + 1] = name
    end
  end
  return removed
end

local function lock(layout)
  return errors.check(fs.lock(layout.root .. "/update.lock", { timeout_ms = 60000 }))
end

-- Downloads, verifies and unpacks `m` into versions/<V> (unless a
-- complete versions/<V> is already there), then checks what it reports.
local function install_version(layout, m, on_progress)
  local dir = layout.versions .. "/" .. m.version
  if not fs.exists(dir) then
    local a = artifact(m)
    local tag = random_hex()
    local bundle = layout.versions .. "/.partial-" .. m.version .. "-" .. tag .. ".tar.zst"
    local partial = dir .. ".partial-" .. tag
    record(layout, { bundle, partial })
    local url = require("banger.kernel_catalog").resolve_url(m.base_url or m.url, a.url)
    errors.check(require("banger.native.http").download({ url = url, path = bundle, sha256 = a.sha256:lower(),
      size = a.size, on_progress = on_progress }))
    errors.check(fs.mkdir(partial, 493))
    -- Unpacked content is capped well above what banger's install tree holds.
    errors.check(require("banger.native.archive").extract(bundle, partial, 1 << 31, { zstd = true, strict = true }))
    fs.remove(bundle)
    if not fs.exists(partial .. "/bin/banger") then
      errors.raise("EMANIFEST", url .. " has no bin/banger")
    end
    errors.check(fs.syncfs(partial))
    errors.check(fs.rename(partial, dir))
  end
  local info = version_of(layout, m.version)
  if info.version ~= m.version then
    fs.remove_tree(dir)
    errors.raise("EVERIFY", "the unpacked banger calls itself " .. tostring(info.version) .. ", not " .. m.version)
  end
end

-- Makes `version` current and the version that was current previous.
local function switch(layout, version)
  local current = links(layout)
  if current and current ~= version then
    point(layout, "previous", current)
  end
  point(layout, "current", version)
  errors.check(fs.syncfs(layout.root))
  fs.remove(journal_path(layout))
end

--- Updates the installed release to the channel's newest, or to
-- `opts.to` (the only way to go back to an older one). `opts.confirm(from,
-- to)` returns false to stop before anything is downloaded; `on_progress`
-- sees the download; `system_root` is where the system install record
-- lives (tests). Returns what happened.
---@param opts { to: string?, confirm: fun(from: string, to: string): boolean, on_progress: function?, system_root: string?, on_stage: function? }
---@return { from: string, to: string, previous: string?, changed: boolean, removed: string[], helper: string? }
function M.update(opts)
  local stage = opts.on_stage or function() end
  local layout = find_layout()
  local _ <close> = lock(layout)
  cleanup(layout)
  local from = sys.build().version
  local channel = channel()
  if opts.to and not M.valid_version(opts.to) then
    errors.usage("--to: not a version: " .. opts.to, "update")
  end
  local url = opts.to and (channel .. "/" .. opts.to .. "/manifest.json") or (channel .. "/latest.json")
  stage("manifest", url)
  local m = M.fetch_manifest(url)
  -- latest.json is a copy of <version>/manifest.json: a relative artifact
  -- URL is relative to the version's directory either way.
  m.base_url = channel .. "/" .. m.version .. "/manifest.json"
  if opts.to and m.version ~= opts.to then
    errors.raise("EMANIFEST", url .. " is the manifest of " .. m.version .. ", not " .. opts.to)
  end
  local order = M.compare(m.version, from)
  local current, previous = links(layout)
  if order == 0 then
    return { from = from, to = from, previous = previous, changed = false, removed = {} }
  end
  if order < 0 and not opts.to then
    errors.raise("EDOWNGRADE", "the channel's latest release (" .. m.version .. ") is older than this banger ("
      .. from .. "): refusing to downgrade", { hint = "banger update --to " .. m.version .. " goes back on purpose" })
  end
  local plan = helper_plan(m.helper_protocol, "banger update" .. (opts.to and (" --to " .. opts.to) or ""))
  if opts.confirm and not opts.confirm(from, m.version) then
    errors.raise("ECANCELED", "update cancelled", { exit = 1 })
  end
  stage("download", m.version)
  local ok, err = pcall(install_version, layout, m, opts.on_progress)
  if not ok then
    -- nothing half-written stays; an interrupt still ends the command
    pcall(cleanup, layout)
    error(err, 0)
  end
  stage("switch", "current -> versions/" .. m.version)
  switch(layout, m.version)
  local helper = plan and (reinstall_helper(layout, m.version, plan, opts.system_root) or "reinstalled") or nil
  local removed = prune(layout, opts.system_root)
  current, previous = links(layout)
  return { from = from, to = current, previous = previous, changed = true, removed = removed, helper = helper }
end

--- Switches back to the version `previous` points at (and makes the
-- current one previous). The root-helper rule applies as for an update.
---@param opts { confirm: fun(from: string, to: string): boolean, system_root: string? }
function M.rollback(opts)
  local layout = find_layout()
  local _ <close> = lock(layout)
  cleanup(layout)
  local current, previous = links(layout)
  if not previous or not fs.exists(layout.versions .. "/" .. previous .. "/bin/banger") then
    errors.raise("ENOENT", "there is no previous version to roll back to")
  end
  local info = version_of(layout, previous)
  if info.version ~= previous then
    errors.raise("EVERIFY", "versions/" .. previous .. " calls itself " .. tostring(info.version))
  end
  local plan = helper_plan(info.helper_protocol or 0, "banger update --rollback")
  if opts.confirm and not opts.confirm(current or sys.build().version, previous) then
    errors.raise("ECANCELED", "rollback cancelled", { exit = 1 })
  end
  switch(layout, previous)
  local helper = plan and (reinstall_helper(layout, previous, plan, opts.system_root) or "reinstalled") or nil
  local now, prev = links(layout)
  return { from = current or sys.build().version, to = now, previous = prev, changed = true, removed = {},
    helper = helper }
end

return M
