-- The main job as a new regular user runs it: an account made by
-- `useradd -m` (its own subordinate id range), Debian's default user PATH
-- (no sbin), no root helper, nothing in its home but /etc/skel. Its first
-- `vm run` builds the default image with mmdebstrap in unshare mode and
-- fetches the kernel with apt-get download, for real: nothing comes from the
-- test caches, so this is also the run from an empty cache. The account,
-- its home, its subordinate ids and anything it left are removed afterwards.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local proc, fs = banger.proc, banger.fs

-- The PATH login gives a regular user: ENV_PATH of /etc/login.defs, else
-- Debian's compiled-in default.
local function login_path()
  for line in (fs.exists("/etc/login.defs") and fs.read("/etc/login.defs") or ""):gmatch("[^\n]+") do
    local p = line:match("^%s*ENV_PATH%s+PATH=(%S+)") or line:match("^%s*ENV_PATH%s+(/%S+)")
    if p then
      return p
    end
  end
  return "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
end

local function lines_of(path, name)
  local found = {}
  for line in (fs.read(path) or ""):gmatch("[^\n]+") do
    if line:find(name .. ":", 1, true) == 1 then
      found[#found + 1] = line
    end
  end
  return found
end

local function pids_of(uid)
  local r = proc.run({ "pgrep", "-u", tostring(uid) })
  local pids = {}
  for p in r.stdout:gmatch("%d+") do
    pids[#pids + 1] = tonumber(p)
  end
  return pids
end

-- A new account; closing it removes the account, its home, its
-- subordinate ids and its runtime directory, and kills (by pid) whatever
-- of it still runs.
local function new_user()
  local name = "bgnew" .. banger.sys.getpid() .. string.format("%04x", banger.sys.monotonic_ms() % 65536)
  local made = proc.run({ "useradd", "-m", name })
  t.eq(made.code, 0, made.stderr)
  local pw = proc.run({ "getent", "passwd", name }).stdout
  local uid, gid, home, shell = pw:match("^[^:]*:[^:]*:(%d+):(%d+):[^:]*:([^:]*):([^:\n]*)")
  local u = { name = name, uid = tonumber(uid), gid = tonumber(gid), home = home, shell = shell }
  function u.remove()
    if u.removed then
      return
    end
    u.removed = true
    for _, pid in ipairs(pids_of(u.uid)) do
      proc.run({ "kill", "-9", tostring(pid) })
    end
    proc.run({ "userdel", "-r", name })
    -- userdel drops the subordinate ranges itself (shadow 4.13); make sure.
    for _, f in ipairs({ "/etc/subuid", "/etc/subgid" }) do
      if #lines_of(f, name) > 0 then
        proc.run({ "sed", "-i", "/^" .. name .. ":/d", f })
      end
    end
    pcall(fs.remove_tree, "/tmp/banger-runtime-" .. u.uid)
  end
  return setmetatable(u, { __close = function() u.remove() end })
end

-- banger as built, laid out the way an installation is (bin/, libexec/,
-- share/banger/lua/) in a directory any user can read: the checkout itself
-- may sit below a directory only its owner can enter.
local function readable_install()
  local prefix = t.tmpdir()
  fs.chmod(prefix, 493)
  for _, d in ipairs({ "bin", "libexec/banger", "share/banger/lua" }) do
    fs.mkdir(prefix .. "/" .. d, 493, true)
  end
  local function cp(...)
    local r = proc.run({ "cp", "-r", "--no-preserve=ownership", ... })
    t.eq(r.code, 0, r.stderr)
  end
  cp(t.bin(), prefix .. "/bin/banger")
  cp(e2e.agent_bin(), prefix .. "/libexec/banger/banger-agent")
  cp(t.source_dir() .. "/lua/stdlib", t.source_dir() .. "/lua/recipes", prefix .. "/share/banger/lua/")
  t.eq(proc.run({ "chmod", "-R", "a+rX", prefix }).code, 0)
  return prefix .. "/bin/banger"
end

describe("the main job as a new regular user", function()
  it("useradd -m, default PATH, no helper, empty home: vm run --rm builds, boots, runs and leaves nothing", function()
    local banger_bin = readable_install()
    -- What the administrator's `apt-get update` (deps.sh) leaves behind:
    -- package lists, which apt-get download needs. Not the kernel itself.
    e2e.kernel_deb()
    local user <close> = new_user()
    t.eq(#lines_of("/etc/subuid", user.name), 1, "useradd gave the account a subordinate uid range")
    local path = login_path()
    t.not_contains(path, "sbin", "a regular user's PATH")
    local function as_user(argv, opts)
      local cmd = { "setpriv", "--reuid=" .. user.uid, "--regid=" .. user.gid, "--init-groups" }
      for _, a in ipairs(argv) do
        cmd[#cmd + 1] = a
      end
      cmd.env = { "HOME=" .. user.home, "USER=" .. user.name, "LOGNAME=" .. user.name, "SHELL=" .. user.shell,
        "PATH=" .. path }
      cmd.cwd = opts and opts.cwd or user.home
      cmd.timeout_ms = opts and opts.timeout_ms or 60000
      return proc.run(cmd)
    end

    local repo = as_user({ "sh", "-c", "mkdir proj && cd proj && git init -q && echo 'hello from the repo' > hello.txt "
      .. "&& git add hello.txt" })
    t.eq(repo.code, 0, repo.stderr)
    local started = banger.sys.monotonic_ms()
    local r = as_user({ banger_bin, "vm", "run", "--rm", "--", "sh", "-c", "uname -a; cat hello.txt; exit 7" },
      -- Under ctest's 900 s, so a slow mirror fails here and the account
      -- is still removed.
      { cwd = user.home .. "/proj", timeout_ms = 780000 })
    local seconds = (banger.sys.monotonic_ms() - started) / 1000
    t.eq(r.code, 7, r.stderr)
    t.truthy(r.stdout:match("^Linux vm%-%x+ %d[%w.-]*%-cloud%-amd64 .* GNU/Linux\nhello from the repo\n$"), r.stdout)
    -- The first run did the work itself: image by mmdebstrap, kernel by apt-get.
    t.contains(r.stderr, "no default image yet: building the Debian 12 image")
    t.contains(r.stderr, "done: debian-12")
    t.contains(r.stderr, "with apt-get download (the default kernel, once)")
    t.contains(r.stderr, "importing the default kernel 'debian-cloud'")
    t.contains(r.stderr, "VMs get no network", "no root helper answered")
    local built = tonumber(r.stderr:match("%[%s*([%d.]+)s%] ext4:"))
    print(string.format("# first vm run as a new user: %.1f s (mmdebstrap %.1f s)", seconds, built or -1))

    local list = as_user({ banger_bin, "vm", "list", "--json" })
    t.eq(list.code, 0, list.stderr)
    t.eq(banger.json.decode(list.stdout), {})
    local images = as_user({ banger_bin, "image", "list", "--json" })
    t.eq(images.code, 0, images.stderr)
    t.eq(banger.json.decode(images.stdout)[1].name, "debian-12")
    -- Nothing of the user's runs on: no QEMU, no DNS responder, no helper.
    e2e.wait_for(function()
      return #pids_of(user.uid) == 0
    end, 15000, "the user's processes to end")

    user.remove()
    t.eq(proc.run({ "getent", "passwd", user.name }).code, 2, "the account is gone")
    t.falsy(fs.exists(user.home), "its home is gone")
    t.eq(lines_of("/etc/subuid", user.name), {})
    t.eq(lines_of("/etc/subgid", user.name), {})
  end)
end)
