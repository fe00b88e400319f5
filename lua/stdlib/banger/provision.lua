--- banger.provision: what every VM's work disk gets before it boots, written
-- with the ext4 engine (never by mounting): banger's SSH key for root, a
-- .hushlogin, the host user's git identity, the config's file_sync
-- entries, and random bytes the initramfs credits to the guest kernel at the
-- first boot (.banger-rng-seed; removed by that boot). The work disk is the
-- guest's /root, so guest "~/x" is "/x" here.
local errors = require("banger.errors")
local state = require("banger.state")
local config = require("banger.config")
local fs = require("banger.native.fs")
local proc = require("banger.native.proc")
local log = require("banger.log")

local M = {}

local DIR, FILE, PRIVATE = tonumber("755", 8), tonumber("644", 8), tonumber("600", 8)

--- banger's SSH key pair (ed25519), generated on first use. ssh-keygen
-- writes OpenSSH's own format, which the system ssh needs too; libssh2
-- cannot generate keys. A lock keeps two first uses from making two keys.
function M.ssh_key()
  local path = config.get().ssh.key
  if path then
    path = path:gsub("^~/", (os.getenv("HOME") or "") .. "/")
  else
    path = state.layout().state .. "/ssh/id_ed25519"
  end
  local dir = path:match("^(.*)/[^/]+$")
  errors.check(fs.mkdir_private(dir))
  local lock <close> = errors.wrap_handle(errors.check(fs.lock(dir .. "/.keygen.lock")))
  if not fs.exists(path) then
    local tmp = dir .. "/.keygen-" .. require("banger.native.sys").getpid()
    fs.remove(tmp)
    fs.remove(tmp .. ".pub")
    local r = errors.check(proc.run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger", "-f", tmp }))
    if r.code ~= 0 then
      errors.raise("EIO", "ssh-keygen failed: " .. r.stderr)
    end
    errors.check(fs.rename(tmp .. ".pub", path .. ".pub"))
    errors.check(fs.rename(tmp, path))
  end
  return { private = path, public = path .. ".pub", public_text = errors.check(fs.read(path .. ".pub")) }
end

-- The files `git config --global` reads (git-config(1), FILES).
local function git_global_files()
  if os.getenv("GIT_CONFIG_GLOBAL") then
    return { os.getenv("GIT_CONFIG_GLOBAL") }
  end
  local home = os.getenv("HOME") or ""
  local xdg = os.getenv("XDG_CONFIG_HOME")
  return { ((xdg and xdg ~= "") and xdg or (home .. "/.config")) .. "/git/config", home .. "/.gitconfig" }
end

-- name, email, and whether git answered (exit 0, or 1 for an unset key).
local function git_identity_from_git()
  local answered = true
  local function get(key)
    -- from / so that no repository's own config is ever in reach; an
    -- identity kept in an included file counts, as it does for git commit
    local r = proc.run({ "git", "config", "--global", "--includes", "--get", key, cwd = "/" })
    answered = answered and r ~= nil and (r.code == 0 or r.code == 1)
    return r and r.code == 0 and (r.stdout:gsub("%s+$", "")) or ""
  end
  local name, email = get("user.name"), get("user.email")
  return name, email, answered
end

--- The host user's git identity ("" when git has none). Asking git costs two
-- processes on every `vm create`, so the answer is kept in the state
-- directory under a hash of the files git reads it from, and git is asked
-- again when they change; a config that includes other files is never kept.
function M.git_identity()
  local parts = {}
  for _, path in ipairs(git_global_files()) do
    local content, _, code = fs.read(path)
    content = content or (code == "ENOENT" and "" or nil)
    if not content or content:lower():find("%[%s*include") then
      local name, email = git_identity_from_git()
      return name, email
    end
    parts[#parts + 1] = path .. "\0" .. content
  end
  local key = require("banger.native.sys").sha256(table.concat(parts, "\0"))
  local json = require("banger.native.json")
  local cache = state.layout().state .. "/git-identity.json"
  local ok, kept = pcall(json.decode, fs.read(cache) or "")
  if ok and type(kept) == "table" and kept.key == key and type(kept.name) == "string" and type(kept.email) == "string" then
    return kept.name, kept.email
  end
  local name, email, answered = git_identity_from_git()
  if answered then
    pcall(fs.write_atomic, cache, json.encode({ key = key, name = name, email = email }), 384)
  end
  return name, email
end

local function expand_host(p)
  return (p:gsub("^~/", (os.getenv("HOME") or "") .. "/"))
end

-- "~/x" and "/root/x" are both "/x" on the work disk.
local function work_path(guest)
  return guest:gsub("^~/", "/"):gsub("^/root/", "/")
end

local function ensure_parent(img, path)
  local parent = path:match("^(.*)/[^/]+$")
  if parent and parent ~= "" then
    img:mkdir(parent, { parents = true, mode = DIR })
  end
end

-- Copies a host directory recursively, keeping file modes. Symlinks inside
-- it are skipped with a warning: following them could copy files from
-- outside the tree the user named (a credentials dir linking elsewhere).
local function copy_dir(img, host, dest, warn)
  img:mkdir(dest, { parents = true, mode = errors.check(fs.stat(host)).mode })
  for _, name in ipairs(errors.check(fs.list(host))) do
    local src, dst = host .. "/" .. name, dest .. "/" .. name
    local st = errors.check(fs.lstat(src))
    if st.type == "symlink" then
      warn("file_sync skipped the symlink " .. src .. " (it could reach outside " .. host .. ")")
    elseif st.type == "directory" then
      copy_dir(img, src, dst, warn)
    elseif st.type == "file" then
      img:write(dst, errors.check(fs.read(src)), { mode = st.mode })
    end
  end
end

--- Applies the config's file_sync entries to an open work-disk image.
-- Missing host paths are skipped with a warning.
function M.file_sync(img, entries, warn)
  warn = warn or function(msg) require("banger.ui").warn(msg) end
  for _, e in ipairs(entries or {}) do
    local host = expand_host(e.host)
    local dest = work_path(e.guest)
    local st = fs.stat(host)  -- the top-level path may be a symlink the user chose
    if not st then
      warn("file_sync: " .. e.host .. " does not exist on this host; skipped")
    elseif st.type == "directory" then
      ensure_parent(img, dest)
      copy_dir(img, host, dest, warn)
    else
      ensure_parent(img, dest)
      local mode = e.mode and tonumber(e.mode, 8) or PRIVATE
      img:write(dest, errors.check(fs.read(host)), { mode = mode })
    end
  end
end

--- Everything a fresh work disk gets. `img` is an open, writable image.
-- opts: public_key, file_sync (replaces the config's entries),
-- extra_file_sync (added after them: a project's banger.lua), warn.
function M.work_disk(img, opts)
  opts = opts or {}
  img:chmod("/", tonumber("700", 8))
  img:chown("/", 0, 0)
  -- sshd's StrictModes wants /root and .ssh owned by root and not writable by others.
  img:mkdir("/.ssh", { parents = true, mode = tonumber("700", 8) })
  local key = opts.public_key or M.ssh_key().public_text
  img:write("/.ssh/authorized_keys", key, { mode = PRIVATE })
  -- The work disk is mounted over /root, so this is the .hushlogin login sees.
  img:write("/.hushlogin", "", { mode = FILE })
  local urandom = assert(io.open("/dev/urandom", "rb"))
  img:write("/.banger-rng-seed", urandom:read(64), { mode = PRIVATE })
  urandom:close()
  local name, email = M.git_identity()
  if name ~= "" or email ~= "" then
    img:write("/.gitconfig", string.format("[user]\n\tname = %s\n\temail = %s\n", name, email), { mode = FILE })
  end
  local entries = opts.file_sync
  if not entries then
    entries = {}
    for _, e in ipairs(config.get().file_sync) do
      entries[#entries + 1] = e
    end
    for _, e in ipairs(opts.extra_file_sync or {}) do
      entries[#entries + 1] = e
    end
  end
  M.file_sync(img, entries, opts.warn)
  log.info("provision", "work disk provisioned", { file_sync = #entries })
end

-- A file the guest may have changed, read back on the host: only a regular
-- file, and only a small one (a huge one would be read into banger's
-- memory). Anything else there (a symlink, a directory, a big file) is
-- removed, so the caller writes a fresh file.
local GUEST_FILE_MAX = 64 * 1024
local function guest_file(img, path)
  if not img:exists(path) then
    return nil
  end
  local st = img:stat(path)
  if st.type == "file" and st.size <= GUEST_FILE_MAX then
    return img:read(path)
  end
  log.warn("provision", "replacing a guest file banger cannot keep", { path = path, type = st.type, size = st.size })
  img:remove(path, { recursive = true })
  return nil
end

-- banger's own keys are the ones ssh-keygen made with comment "banger"
-- (ssh_key above); a key of the user's keeps its line.
local function is_banger_key(line)
  return line:match("^%S+%s+%S+%s+banger%s*$") ~= nil
end

-- authorized_keys with the current key first: a previous banger key is
-- dropped (a rotated key stops working), every other line is kept.
local function refresh_authorized_keys(img, key)
  key = key:gsub("%s+$", "")
  if img:exists("/.ssh") and img:stat("/.ssh").type ~= "directory" then
    img:remove("/.ssh")
  end
  if not img:exists("/.ssh") then
    img:mkdir("/.ssh", { parents = true, mode = tonumber("700", 8) })
  end
  local path = "/.ssh/authorized_keys"
  local old = guest_file(img, path)
  local lines = { key }
  for line in (old or ""):gmatch("[^\n]+") do
    if line ~= key and not is_banger_key(line) then
      lines[#lines + 1] = line
    end
  end
  local text = table.concat(lines, "\n") .. "\n"
  if text ~= old then
    img:write(path, text, { mode = PRIVATE })
  end
end

-- The host's git identity into the guest's ~/.gitconfig: written whole when
-- there is none, else only user.name and user.email are set (by git
-- itself, on a copy), so settings made inside the guest stay.
local function refresh_gitconfig(img, name, email)
  if name == "" and email == "" then
    return  -- the host has none now: the guest keeps what it has
  end
  local path = "/.gitconfig"
  local fresh = string.format("[user]\n\tname = %s\n\temail = %s\n", name, email)
  local old = guest_file(img, path)
  if not old then
    img:write(path, fresh, { mode = FILE })
    return
  end
  if old == fresh then
    return
  end
  local dir = errors.check(fs.mkdtemp("gitconfig-"))
  local copy = dir .. "/config"
  local updated, why
  errors.check(fs.write_atomic(copy, old, PRIVATE))
  for _, kv in ipairs({ { "user.name", name }, { "user.email", email } }) do
    local r, msg = proc.run({ "git", "config", "--file", copy, kv[1], kv[2], cwd = "/" })
    if not r or r.code ~= 0 then
      why = r and r.stderr:gsub("%s+$", "") or msg
      break
    end
  end
  if not why then
    updated = errors.check(fs.read(copy))
  end
  fs.remove(copy)
  fs.remove(dir)
  if why then
    -- a ~/.gitconfig git cannot parse is the guest's to fix: the start goes on
    log.warn("provision", "the guest's ~/.gitconfig was left as it was", { error = why })
    require("banger.ui").warn("could not set the git identity in the VM's ~/.gitconfig (" .. why
      .. "); it was left as it was")
  elseif updated ~= old then
    img:write(path, updated, { mode = img:stat(path).mode & tonumber("7777", 8) })
  end
end

--- What a stopped VM's work disk gets again at every start (banger.vm's
-- refresh_work_disk hook): banger's current SSH key, the host's git
-- identity and the config's file_sync entries, so a change to any of them
-- reaches VMs made before it. Unlike work_disk it keeps what the guest
-- made: other lines of authorized_keys, other settings in ~/.gitconfig.
-- A file_sync entry removed from the config leaves its files in place;
-- create's per-call file_sync (a project's vm.file_sync) is not kept, so
-- it is not written again. opts: public_key, file_sync (replaces the
-- config's entries), warn.
function M.refresh(img, opts)
  opts = opts or {}
  refresh_authorized_keys(img, opts.public_key or M.ssh_key().public_text)
  refresh_gitconfig(img, M.git_identity())
  local entries = opts.file_sync or config.get().file_sync
  M.file_sync(img, entries, opts.warn)
  log.info("provision", "work disk refreshed", { file_sync = #entries })
end

-- The incompat feature flags of the ext2/3/4 image at `path`, or nil.
local RECOVER, EXTENTS = 0x4, 0x40
local function incompat_features(path)
  local f = assert(io.open(path, "rb"))
  f:seek("set", 1024 + 0x60)  -- the superblock's s_feature_incompat
  local bytes = f:read(4)
  f:close()
  return bytes and #bytes == 4 and string.unpack("<I4", bytes) or nil
end

--- The default refresh_work_disk hook of banger.vm: refresh (above) on a
-- stopped VM's work disk `disk` ({ path, format }), before it boots. A
-- journal left unreplayed by a killed VM is replayed first (`e2fsck -E
-- journal_only`), as the guest kernel would at mount: libext2fs does not,
-- and writing under it would let the later replay undo or corrupt the
-- writes; after a refresh that did not finish (a marker file beside the
-- disk says so) the disk is checked with `e2fsck -f -p` instead. A qcow2
-- overlay (a VM that was snapshotted or restored) cannot
-- be opened by the ext4 engine, nor a filesystem without extents written:
-- those are skipped with a log line (and a warning when the config has
-- file_sync entries). Returns whether it wrote.
function M.refresh_disk(row, disk, opts)
  local function skip(what)
    log.warn("provision", "work disk not refreshed: it is " .. what, { vm = row.name })
    if #config.get().file_sync > 0 then
      require("banger.ui").warn("VM " .. row.name .. ": its work disk is " .. what
        .. ", so file_sync, the SSH key and the git identity were not written again at this start")
    end
    return false
  end
  if disk.format ~= "raw" then
    return skip("a " .. disk.format .. " overlay (it was snapshotted or restored)")
  end
  local features = incompat_features(disk.path) or 0
  if features & EXTENTS == 0 then
    -- the ext4 engine writes extent-mapped files only
    return skip("a filesystem without extents (ext2/ext3, not made by banger)")
  end
  -- libext2fs does not journal its own writes: a banger killed while it
  -- writes (kill -9, power loss) can leave the bitmaps behind the inodes.
  -- The marker says a refresh did not finish; the next one checks first.
  local marker = disk.path .. ".refreshing"
  local e2fsck
  if fs.exists(marker) then
    e2fsck = { "-f", "-p", why = "an earlier refresh did not finish: checking the work disk" }
  elseif features & RECOVER ~= 0 then  -- set while mounted: its VM was killed
    e2fsck = { "-E", "journal_only", "-p", why = "replaying the work disk's journal" }
  end
  if e2fsck then
    local argv = { require("banger.tools").require("e2fsck") }
    table.move(e2fsck, 1, #e2fsck, 2, argv)
    argv[#argv + 1] = disk.path
    local r = errors.check(proc.run(argv))
    -- 0: nothing to fix, 1: fixed (e2fsck(8), EXIT CODE)
    if r.code > 1 then
      errors.raise("EIO", e2fsck.why .. " (e2fsck " .. table.concat(e2fsck, " ") .. ") failed with " .. r.code
        .. ": " .. (r.stdout .. r.stderr):gsub("%s+$", "") .. "; check it with e2fsck -f " .. disk.path)
    end
    log.info("provision", e2fsck.why, { vm = row.name, e2fsck = r.code })
  end
  errors.check(fs.write_atomic(marker, "", PRIVATE))
  local img <close> = require("banger").ext4.open(disk.path, { write = true })
  M.refresh(img, opts)
  img:close()
  errors.check(fs.remove(marker))
  return true
end

return M
