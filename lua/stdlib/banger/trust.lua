--- banger.trust: which projects' code may run on this host.
--
-- A repository is input, not configuration: its `.banger/` directory
-- (recipe overrides) and its `banger.lua` run on the host only after the
-- user has trusted that exact content with `banger trust`, like direnv's
-- `allow`, mise's `trust` and Neovim's `vim.secure`. Trusting records a
-- manifest (every file of `.banger/` and `banger.lua`, with its sha256) in
-- banger's own state; any change (content, a file added or removed) makes
-- the project untrusted again. A project file is only ever loaded from the
-- bytes whose hash was checked, so swapping it after the check changes
-- nothing. docs/security.md describes the whole model.
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local json = require("banger.native.json")
local paths = require("banger.native.paths")
local sys = require("banger.native.sys")

local M = {}

-- What makes a directory a project, and what trusting it covers.
M.code_dir = ".banger"
M.settings_file = "banger.lua"

-- Bounds on what one trust covers: a project's banger code is a handful of
-- small files, not a tree to hash on every command.
M.max_entries = 2000

local disabled = os.getenv("BANGER_NO_PROJECT") == "1"

--- --no-project: this process ignores every project.
function M.disable()
  disabled = true
end

function M.disabled()
  return disabled
end

local function parent(dir)
  local p = dir:match("^(.*)/[^/]+$")
  return (p == nil or p == "") and "/" or p
end

local function git_top(dir)
  local d = dir
  while true do
    if fs.exists(d .. "/.git") then
      return d
    end
    if d == "/" then
      return nil
    end
    d = parent(d)
  end
end

local function is_project(dir)
  return fs.exists(dir .. "/" .. M.code_dir) or fs.exists(dir .. "/" .. M.settings_file)
end

--- The project `start` (default: the current directory) belongs to, or nil:
-- the nearest directory holding `.banger/` or `banger.lua`, looking up to
-- the root of the git repository `start` is in (only `start` itself
-- outside a repository). Nil when projects are disabled (--no-project).
function M.find_root(start)
  if disabled then
    return nil
  end
  local dir = fs.realpath(start or fs.cwd() or ".")
  if not dir then
    return nil
  end
  local top = git_top(dir)
  while true do
    if is_project(dir) then
      return dir
    end
    if not top or dir == top or dir == "/" then
      return nil
    end
    dir = parent(dir)
  end
end

-- manifest ------------------------------------------------------------------

local function entry_for(root, rel)
  local st = fs.lstat(root .. "/" .. rel)
  if not st then
    return nil
  end
  if st.type == "file" then
    return { path = rel, kind = "file", sha256 = sys.sha256(errors.check(fs.read(root .. "/" .. rel))) }
  elseif st.type == "symlink" then
    -- Recorded so adding or retargeting one changes the manifest, but
    -- never followed: project code is loaded from regular files only.
    return { path = rel, kind = "symlink", sha256 = sys.sha256("symlink:" .. (fs.readlink(root .. "/" .. rel) or "")) }
  elseif st.type == "directory" then
    return { path = rel, kind = "directory" }
  end
  return { path = rel, kind = st.type }
end

--- Every file trusting `root` covers: a list of { path, kind, sha256 }
-- sorted by path, and the digest over all of it.
function M.manifest(root)
  local entries = {}
  local function add(e)
    entries[#entries + 1] = e
    if #entries > M.max_entries then
      errors.raise("E2BIG", root .. "/" .. M.code_dir .. " holds more than " .. M.max_entries
        .. " entries; banger's project code should be a handful of files", { exit = 1 })
    end
  end
  local settings = entry_for(root, M.settings_file)
  if settings then
    add(settings)
  end
  local function walk(rel)
    local e = entry_for(root, rel)
    if not e then
      return
    end
    add(e)
    if e.kind == "directory" then
      for _, name in ipairs(fs.list(root .. "/" .. rel) or {}) do
        walk(rel .. "/" .. name)
      end
    end
  end
  walk(M.code_dir)
  table.sort(entries, function(a, b)
    return a.path < b.path
  end)
  local lines = {}
  for _, e in ipairs(entries) do
    lines[#lines + 1] = e.path .. "\0" .. e.kind .. "\0" .. (e.sha256 or "")
  end
  return { root = root, entries = entries, digest = sys.sha256(table.concat(lines, "\n")) }
end

-- the store ----------------------------------------------------------------

local function store_dir(create)
  local layout = create and errors.check(paths.ensure()) or errors.check(paths.resolve())
  return layout.state .. "/trust"
end

local function store_path(create)
  return store_dir(create) .. "/projects.json"
end

local function read_store()
  local text = fs.read(store_path(false))
  if not text then
    return { version = 1, projects = {} }
  end
  local ok, data = pcall(json.decode, text)
  if not ok or type(data) ~= "table" or type(data.projects) ~= "table" then
    -- A damaged store trusts nothing; the next `banger trust` rewrites it.
    require("banger.log").warn("trust", "unreadable trust store, treating every project as untrusted",
      { path = store_path(false) })
    return { version = 1, projects = {} }
  end
  return data
end

-- Read-modify-write under a lock, written atomically (0600 in a 0700 dir).
local function update_store(fn)
  local dir = store_dir(true)
  errors.check(fs.mkdir_private(dir))
  local lock <close> = errors.check(fs.lock(dir .. "/lock"))
  local data = read_store()
  local result = fn(data.projects)
  errors.check(fs.write_atomic(store_path(true), json.encode(data, { indent = 2 }), 384))
  return result
end

-- status -------------------------------------------------------------------

local cache = {}

--- "trusted", "untrusted" (never trusted) or "changed" (trusted once, the
-- content differs now), and the current manifest. Computed once per process.
function M.status(root)
  if cache[root] then
    return cache[root].status, cache[root].manifest
  end
  local manifest = M.manifest(root)
  local record = read_store().projects[root]
  local status = "untrusted"
  if type(record) == "table" then
    status = record.digest == manifest.digest and "trusted" or "changed"
  end
  cache[root] = { status = status, manifest = manifest, record = record }
  return status, manifest
end

function M.is_trusted(root)
  return M.status(root) == "trusted"
end

--- The one-line error for using `subject` (a file, "file:line") of an
-- untrusted project because `reason`: exit 77 (EX_NOPERM), raised before
-- anything is created.
function M.refuse(root, subject, reason)
  local state = M.status(root) == "changed" and "has changed since you trusted it" or "is not trusted"
  errors.raise("EUNTRUSTED", string.format("%s: %s (this project %s); review it, then run 'banger trust %s', "
    .. "or pass --no-project to ignore the project", subject, reason, state, root), { exit = 77 })
end

--- The bytes of `rel` in the trusted project `root`, checked against the
-- hash recorded when it was trusted. Raises EUNTRUSTED otherwise.
function M.read(root, rel)
  local path = root .. "/" .. rel
  if not M.is_trusted(root) then
    M.refuse(root, path, "project code")
  end
  local want
  for _, e in ipairs(cache[root].record.entries or {}) do
    if e.path == rel and e.kind == "file" then
      want = e.sha256
    end
  end
  local st = fs.lstat(path)
  local text = want and st and st.type == "file" and fs.read(path)
  if not text or sys.sha256(text) ~= want then
    cache[root] = nil
    M.refuse(root, path, "project code that changed while banger read it")
  end
  return text
end

-- trusting -----------------------------------------------------------------

--- Records the current content of `root` as trusted; returns its manifest.
function M.allow(root)
  local manifest = M.manifest(root)
  if #manifest.entries == 0 then
    errors.raise("ENOENT", root .. " has no " .. M.settings_file .. " and no " .. M.code_dir
      .. "/: nothing to trust", { exit = 1 })
  end
  update_store(function(projects)
    projects[root] = { digest = manifest.digest, entries = manifest.entries,
      trusted_at = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  end)
  cache[root] = nil
  return manifest
end

--- Forgets `root`; returns whether it was trusted before.
function M.revoke(root)
  if not fs.exists(store_path(false)) then
    return false
  end
  cache[root] = nil
  return update_store(function(projects)
    local had = projects[root] ~= nil
    projects[root] = nil
    return had
  end)
end

--- Every trusted project: { root, trusted_at, files, status } sorted by root,
-- status "trusted", "changed" or "missing" (the directory is gone).
function M.list()
  local out = {}
  for root, record in pairs(read_store().projects) do
    local status = "missing"
    if fs.exists(root) then
      status = M.manifest(root).digest == record.digest and "trusted" or "changed"
    end
    local files = 0
    for _, e in ipairs(record.entries or {}) do
      files = files + (e.kind == "file" and 1 or 0)
    end
    out[#out + 1] = { root = root, trusted_at = tostring(record.trusted_at), files = files, status = status }
  end
  table.sort(out, function(a, b)
    return a.root < b.root
  end)
  return out
end

-- the user's own recipes ---------------------------------------------------

--- Like OpenSSH's StrictModes: `path` (and every directory from `top`
-- down to it) must belong to the user (or root) and be writable by nobody
-- else. Returns nil when fine, else the reason.
function M.unsafe_path(top, path)
  local uid = sys.getuid()
  local check = { top }
  local rest = path:sub(#top + 2)
  local cur = top
  for part in rest:gmatch("[^/]+") do
    cur = cur .. "/" .. part
    check[#check + 1] = cur
  end
  for _, p in ipairs(check) do
    local st = fs.stat(p)
    if st then
      if st.uid ~= uid and st.uid ~= 0 then
        return p .. " belongs to uid " .. st.uid .. ", not to you"
      end
      if st.mode & 18 ~= 0 then -- 022: group or others may write
        return string.format("%s is writable by %s (chmod go-w %s)", p, st.mode & 2 ~= 0 and "everyone" or "its group", p)
      end
    end
  end
end

return M
