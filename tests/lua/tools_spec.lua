-- banger.tools: the one table of host programs and their Debian packages,
-- checked against this host's dpkg database, and what a user whose PATH
-- lacks a program sees from doctor and from a command that needs it.

-- Debian 12's ENV_PATH for regular users (/etc/login.defs): no sbin.
local USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"

local function env_with_path(home, path)
  local env = {}
  for _, e in ipairs(t.env(home)) do
    if not e:match("^PATH=") then
      env[#env + 1] = e
    end
  end
  env[#env + 1] = "PATH=" .. path
  return env
end

local function installed(package)
  local r = banger.proc.run({ "dpkg-query", "-W", "-f=${Status}", package })
  return r.code == 0 and r.stdout:find("install ok installed", 1, true) ~= nil
end

-- Packages whose files end in bin/<name>, by dpkg's own database; for a
-- program reached through alternatives (iptables), the package of the file
-- the link resolves to.
local function owners(name, path)
  local r = banger.proc.run({ "dpkg-query", "-S", "*bin/" .. name })
  if r.code ~= 0 and path then
    local real = banger.fs.realpath(path)
    r = banger.proc.run({ "dpkg-query", "-S", real })
    name = real:match("([^/]+)$")
  end
  local set = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local packages, path = line:match("^(.-): (.+)$")
    if packages and path:match("/([^/]+)$") == name then
      for p in packages:gmatch("[^,%s]+") do
        set[p:gsub(":.*$", "")] = true
      end
    end
  end
  return set
end

describe("banger.tools", function()
  it("maps each program to the Debian package that ships it, on this host's dpkg database", function()
    local checked = 0
    for _, entry in ipairs(banger.tools.list()) do
      local path = banger.tools.find(entry.name)
      if entry.package then
        t.eq(path ~= nil, installed(entry.package),
          entry.name .. ": found iff " .. entry.package .. " is installed")
        if path then
          t.truthy(owners(entry.name, path)[entry.package], entry.name .. " is not shipped by " .. entry.package)
          checked = checked + 1
        end
      else
        t.eq(next(owners(entry.name)), nil, entry.name .. " has a package after all")
      end
    end
    -- deps.sh installs most of them: the comparison above was not vacuous.
    t.truthy(checked >= 15, "only " .. checked .. " programs present")
  end)

  it("finds the sbin programs with a regular user's PATH, and names the package of a missing one", function()
    local home = t.tmpdir()
    t.write(home .. "/probe.lua", [[
      print(banger.tools.require("resize2fs"))
      local _, e = pcall(banger.tools.require, "banger-no-such-program")
      print(e.code, e.message)
      print(banger.tools.install_command("newuidmap"))
    ]])
    local r = banger.proc.run({ t.bin(), "run", home .. "/probe.lua", env = env_with_path(home, USER_PATH), cwd = home })
    t.eq(r.code, 0, r.stderr)
    t.truthy(r.stdout:match("^/usr/sbin/resize2fs\n") or r.stdout:match("^/sbin/resize2fs\n"), r.stdout)
    t.contains(r.stdout, "ENOTOOL\tbanger-no-such-program not found (searched PATH, /usr/local/sbin, /usr/sbin, /sbin)\n")
    t.contains(r.stdout, "apt-get install uidmap\n")
  end)
end)

describe("a missing program", function()
  it("doctor, with a regular user's PATH, finds resize2fs and names qemu-utils for a missing qemu-img", function()
    local home = t.tmpdir()
    local function doctor(path)
      local r = banger.proc.run({ t.bin(), "doctor", "--json", env = env_with_path(home, path), cwd = home })
      local by_name = {}
      for _, c in ipairs(banger.json.decode(r.stdout).checks) do
        by_name[c.name] = c
      end
      return by_name
    end
    local user = doctor(USER_PATH)
    t.eq(user.resize2fs.status, "ok", user.resize2fs.detail)
    t.truthy(user.resize2fs.detail:match("^/usr/sbin/") or user.resize2fs.detail:match("^/sbin/"), user.resize2fs.detail)
    local bare = doctor(home)  -- nothing of /usr/bin on PATH: qemu-img is out of reach
    t.eq(bare["qemu-img"].status, "fail")
    t.eq(bare["qemu-img"].fix, "apt-get install qemu-utils")
    t.eq(bare.resize2fs.status, "ok", "sbin is searched whatever PATH says")
  end)

  it("stops a command with one line naming the package, before it starts anything", function()
    local home = t.tmpdir()
    local r = banger.proc.run({ t.bin(), "image", "build", "debian", env = env_with_path(home, home), cwd = home })
    t.eq(r.code, 1)
    t.eq(r.stderr, "banger: mmdebstrap not found (searched PATH, /usr/local/sbin, /usr/sbin, /sbin): "
      .. "install it with 'apt-get install mmdebstrap'\n")
    local images = home .. "/.local/state/banger/images"
    t.truthy(not banger.fs.exists(images) or #banger.fs.list(images) == 0, "nothing was built")
  end)

  it("a regular user without newuidmap is told to install uidmap, not mmdebstrap's chroot-mode riddle", function()
    -- mmdebstrap reachable, newuidmap not: a PATH of one directory holding
    -- only a link to mmdebstrap (newuidmap lives in /usr/bin, not sbin).
    local home = t.tmpdir()
    local bin = home .. "/bin"
    banger.fs.mkdir(bin, 493, true)
    banger.fs.symlink(banger.tools.require("mmdebstrap"), bin .. "/mmdebstrap")
    local env = env_with_path(home, bin)
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local r = banger.proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "image", "build",
      "debian", env = env, cwd = home })
    t.eq(r.code, 1)
    t.eq(r.stderr, "banger: newuidmap not found (searched PATH, /usr/local/sbin, /usr/sbin, /sbin): "
      .. "install it with 'apt-get install uidmap'\n")
  end)
end)
