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

local function git(dir, args)
  local argv = { "git", "-C", dir }
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
  img:mkdir(dest, { parents = true, mode = tonumber("755", 8) })
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

return M
