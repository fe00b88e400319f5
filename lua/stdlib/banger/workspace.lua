--- banger.workspace: which files of the current git repository go into a VM,
-- and copying them onto its work disk.
--
-- The file list comes from `git ls-files`: git already knows the repository's
-- ignore rules (.gitignore at every level, .git/info/exclude, the user's
-- global excludes) and what is tracked; re-implementing that, or linking
-- libgit2 for one list, would only add ways to disagree with git.
local errors = require("banger.errors")
local proc = require("banger.native.proc")
local fs = require("banger.native.fs")

local M = {}

-- A repository's own .git/config can name programs git runs: an archived
-- or shared repository (a clone does not copy it) could set core.fsmonitor,
-- which even `git ls-files` executes. Listing files must run nothing of the
-- repository's (docs/security.md).
local function git(dir, args)
  local argv = { "git", "-c", "core.fsmonitor=false", "-C", dir }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  local r = errors.check(proc.run(argv))
  if r.code ~= 0 then
    return nil, (r.stderr:gsub("%s+$", ""))
  end
  return r.stdout
end

local function split0(s)
  local out = {}
  for item in s:gmatch("([^%z]+)") do
    out[#out + 1] = item
  end
  table.sort(out)
  return out
end

--- The repository containing `dir`, or nil when it is not in one.
function M.root(dir)
  local out = git(dir or fs.cwd(), { "rev-parse", "--show-toplevel" })
  return out and (out:gsub("%s+$", "")) or nil
end

--- Files to copy: tracked ones, plus untracked non-ignored ones when asked.
-- Returns files, skipped_untracked_count. Ignored files never go.
function M.files(root, opts)
  opts = opts or {}
  local tracked = split0(errors.check(git(root, { "ls-files", "-z", "--cached" })))
  local untracked = split0(errors.check(git(root, { "ls-files", "-z", "--others", "--exclude-standard" })))
  local files = {}
  local seen = {}
  for _, f in ipairs(tracked) do
    -- A tracked path deleted from the working tree has nothing to copy.
    if fs.lstat(root .. "/" .. f) and not seen[f] then
      seen[f] = true
      files[#files + 1] = f
    end
  end
  if opts.include_untracked then
    for _, f in ipairs(untracked) do
      if not seen[f] then
        seen[f] = true
        files[#files + 1] = f
      end
    end
    table.sort(files)
    return files, 0
  end
  return files, #untracked
end

--- Copies `files` (relative to root) into an open work-disk image under
-- `dest` (e.g. "/myrepo", which the guest sees as /root/myrepo), keeping the
-- executable bit and symlinks, owned by root. Submodule directories (git
-- links) are skipped: their content is another repository.
function M.copy_to_image(img, root, files, dest)
  if dest ~= "" then -- "": the image's own root
    img:mkdir(dest, { parents = true, mode = tonumber("755", 8) })
  end
  local copied = 0
  for _, rel in ipairs(files) do
    local src = root .. "/" .. rel
    local st = fs.lstat(src)
    local target = dest .. "/" .. rel
    local parent = target:match("^(.*)/[^/]+$")
    if parent and parent ~= dest then
      img:mkdir(parent, { parents = true, mode = tonumber("755", 8) })
    end
    if st and st.type == "file" then
      local mode = (st.mode & tonumber("111", 8)) ~= 0 and tonumber("755", 8) or tonumber("644", 8)
      img:write(target, errors.check(fs.read(src)), { mode = mode, mtime = st.mtime })
      copied = copied + 1
    elseif st and st.type == "symlink" then
      if img:exists(target) then
        img:remove(target, { recursive = true })
      end
      img:symlink(errors.check(fs.readlink(src)), target, {})
      copied = copied + 1
    end
  end
  return copied
end

--- Where a VM's workspace came from and went: recorded in the VM's
-- directory when it is copied, read back by export.
local function record_path(row)
  return require("banger.vms").dir(row) .. "/workspace.json"
end

function M.record(row, root, guest_dir, files)
  local json = require("banger.native.json")
  errors.check(fs.write_atomic(record_path(row), json.encode({ root = root, guest = guest_dir, files = files }), 384))
end

function M.recorded(row)
  local text = fs.read(record_path(row))
  return text and require("banger.native.json").decode(text) or nil
end

--- The workspace of a warm `vm run`: a disk of its own holding exactly
-- `files` at its root (made in-process, sparse, `bytes` big), hot-plugged
-- into the running VM and mounted by the agent at /root/<repo>, so a VM
-- restored from a snapshot sees this repository as it is now and nothing
-- an earlier run left. Returns the number of files copied.
M.disk_serial = "banger-ws"

function M.make_disk(row, root, files, bytes)
  local path = require("banger.vms").dir(row) .. "/workspace.ext4"
  local img <close> = require("banger").ext4.create(path, bytes)
  img:remove("/lost+found", { recursive = true }) -- the mount shows exactly the repository
  local n = M.copy_to_image(img, root, files, "")
  img:close()
  return path, n
end

--- Hot-plugs the workspace disk at `path` (VM running or paused after a
-- restore). The handles remember it: a hot-plugged device is not in the
-- machine a snapshot could restore (banger.snapshots refuses), and later
-- starts attach the disk at boot instead (banger.vm.start_locked).
function M.attach_disk(row, h, path)
  errors.check(require("banger.native.vmm").hotplug_disk(h, { id = "ws", path = path, format = "raw",
    serial = M.disk_serial }))
  h.hotplugged = { "ws" }
  require("banger.vms").save_handles(row, h)
end

--- Mounts the hot-plugged workspace at `guest_dir` through the agent.
function M.mount_disk(row, guest_dir)
  local c <close> = require("banger.guest").connect(row)
  c:mount({ serial = M.disk_serial, target = guest_dir, fstype = "ext4", timeout_ms = 15000 })
end

--- Unpacks the tar at `tar_path` (made by banger: archive.create) into
-- `guest_dir` of running VM `row`, through the agent (the guest's tar).
-- `exec` runs the agent request (default banger.guest.exec), for a caller
-- that serialises the agent's use.
function M.unpack_in_guest(row, tar_path, guest_dir, exec)
  exec = exec or require("banger.guest").exec
  local r = exec(row, { "sh", "-c", 'mkdir -p "$1" && tar -x -f - -C "$1"', "sh", guest_dir },
    { stdin = errors.check(fs.read(tar_path)), capture = true })
  if r.code ~= 0 then
    errors.raise("EGUEST", "unpacking the workspace in the guest failed: " .. (r.stderr or ""))
  end
end

--- Copies `files` of `root` into a VM under /root/<repo>: straight into the
-- work disk when the VM is stopped, as a tar through the agent when it runs.
function M.prepare(row, root, files)
  local repo = root:match("([^/]+)$")
  local vms = require("banger.vms")
  local n
  if vms.alive(row) then
    local tmp = errors.check(fs.mkdtemp("banger-ws-"))
    local ok, err = pcall(function()
      local tar = tmp .. "/ws.tar"
      n = errors.check(require("banger.native.archive").create(tar, root, files))
      M.unpack_in_guest(row, tar, "/root/" .. repo)
    end)
    fs.remove_tree(tmp)
    if not ok then
      error(err, 0)
    end
  else
    local img <close> = require("banger.native.ext4").open(vms.dir(row) .. "/work.ext4", { write = true })
    n = M.copy_to_image(img, root, files, "/" .. repo)
  end
  M.record(row, root, "/root/" .. repo, files)
  return n
end

-- Every file and symlink under dir, as sorted relative paths.
local function walk(dir, prefix, out)
  for _, name in ipairs(errors.check(fs.list(dir))) do
    local rel = prefix and (prefix .. "/" .. name) or name
    local st = fs.lstat(dir .. "/" .. name)
    if st and st.type == "directory" then
      walk(dir .. "/" .. name, rel, out)
    elseif st and (st.type == "file" or st.type == "symlink") then
      out[#out + 1] = rel
    end
  end
  return out
end

--- Every file and symlink under `dir` (not following links), as sorted
-- relative paths: what archive.create packs.
function M.tree(dir)
  local out = walk(dir, nil, {})
  table.sort(out)
  return out
end

local function same(a, b)
  local sa, sb = fs.lstat(a), fs.lstat(b)
  if not sa or not sb or sa.type ~= sb.type then
    return false
  end
  if sa.type == "symlink" then
    return fs.readlink(a) == fs.readlink(b)
  end
  return sa.size == sb.size and fs.read(a) == fs.read(b)
end

-- git diff --no-index names files by the directories compared; rewrite the
-- header lines (never hunk content) to a/<path> and b/<path>.
local function relabel(patch)
  local out, in_header = {}, false
  for line in patch:gmatch("(.-)\n") do
    if line:sub(1, 11) == "diff --git " then
      in_header = true
      -- new files appear as a/new/x b/new/x, deleted ones as a/base/x b/base/x
      line = line:gsub(" a/base/", " a/", 1):gsub(" a/new/", " a/", 1):gsub(" b/new/", " b/", 1):gsub(" b/base/", " b/", 1)
    elseif in_header then
      if line:sub(1, 2) == "@@" or line == "GIT binary patch" then
        in_header = false
      else
        line = line:gsub("^%-%-%- a/base/", "--- a/"):gsub("^%-%-%- a/new/", "--- a/")
          :gsub("^%+%+%+ b/new/", "+++ b/"):gsub("^%+%+%+ b/base/", "+++ b/")
      end
    end
    out[#out + 1] = line
  end
  return #out > 0 and (table.concat(out, "\n") .. "\n") or ""
end

--- Brings a VM's changed workspace back. opts.format "patch" (a git-style
-- patch against the host's current files, applicable with `git apply`) or
-- "tar" (the changed and new files). Returns { data =, changed =, deleted = }.
function M.export(row, opts)
  local rec = M.recorded(row)
  if not rec then
    errors.raise("ENOENT", "VM '" .. row.name .. "' has no workspace (vm run or vm workspace prepare copies one)")
  end
  local guest = require("banger.guest")
  local parent, base = rec.guest:match("^(.*)/([^/]+)$")
  local r = guest.exec(row, { "tar", "-C", parent, "-cf", "-", base }, { capture = true })
  if r.code ~= 0 then
    errors.raise("EGUEST", "reading the workspace from the guest failed: " .. (r.stderr or ""))
  end
  local tmp = errors.check(fs.mkdtemp("banger-export-"))
  local ok, result = pcall(function()
    errors.check(fs.write_atomic(tmp .. "/guest.tar", r.stdout, 384))
    errors.check(fs.mkdir(tmp .. "/guest", 448))
    errors.check(require("banger.native.archive").extract(tmp .. "/guest.tar", tmp .. "/guest", opts.max_bytes))
    local gdir = tmp .. "/guest/" .. base
    local in_guest = walk(gdir, nil, {})
    local present, changed, deleted = {}, {}, {}
    for _, rel in ipairs(in_guest) do
      present[rel] = true
      if not same(rec.root .. "/" .. rel, gdir .. "/" .. rel) then
        changed[#changed + 1] = rel
      end
    end
    for _, rel in ipairs(rec.files or {}) do
      if not present[rel] and fs.lstat(rec.root .. "/" .. rel) then
        deleted[#deleted + 1] = rel
      end
    end
    local data
    if opts.format == "tar" then
      errors.check(require("banger.native.archive").create(tmp .. "/out.tar", gdir, changed))
      data = errors.check(fs.read(tmp .. "/out.tar"))
    else
      -- Two small trees holding only what differs: the host's version and the guest's.
      local archive = require("banger.native.archive")
      local host_side = {}
      for _, list in ipairs({ changed, deleted }) do
        for _, rel in ipairs(list) do
          if fs.lstat(rec.root .. "/" .. rel) then
            host_side[#host_side + 1] = rel
          end
        end
      end
      errors.check(fs.mkdir(tmp .. "/base", 448))
      errors.check(fs.mkdir(tmp .. "/new", 448))
      errors.check(archive.create(tmp .. "/base.tar", rec.root, host_side))
      errors.check(archive.extract(tmp .. "/base.tar", tmp .. "/base"))
      errors.check(archive.create(tmp .. "/new.tar", gdir, changed))
      errors.check(archive.extract(tmp .. "/new.tar", tmp .. "/new"))
      local d = require("banger.native.proc").run({ "git", "diff", "--no-index", "--binary", "--no-color", "base", "new",
        cwd = tmp })
      if d.code > 1 then
        errors.raise("EGIT", "git diff failed: " .. d.stderr)
      end
      data = relabel(d.stdout)
    end
    return { data = data, changed = changed, deleted = deleted }
  end)
  fs.remove_tree(tmp)
  if not ok then
    error(result, 0)
  end
  return result
end

return M
