-- banger doctor: every check reports a status and detail, every problem a fix.

-- A PATH holding only a shell and env: no ip, df, qemu or other tool.
local function bare_path()
  local dir = t.tmpdir() .. "/bin"
  banger.fs.mkdir(dir, 493, true)
  banger.fs.symlink("/bin/sh", dir .. "/sh")
  return dir
end

-- banger searches /usr/local/sbin, /usr/sbin and /sbin after PATH, so a
-- host without a tool is made by hiding those under empty read-only tmpfs
-- mounts, in a mount namespace of the doctor's own.
local HIDE_SBIN = [[
for d in /usr/local/sbin /usr/sbin /sbin; do
  [ -d "$d" ] && [ ! -L "$d" ] && mount -t tmpfs -o ro,size=4k banger-no-sbin "$d"
done
PATH=$BARE_PATH exec "$@"
]]

--- banger doctor --json in `home` (opts.path replaces PATH and hides the
-- sbin directories); the decoded report.
local function doctor(home, opts)
  opts = opts or {}
  local env = t.env(home)
  local argv = { t.bin(), "doctor", "--json" }
  if opts.path then
    env[#env + 1] = "BARE_PATH=" .. opts.path
    argv = { "unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE_SBIN, "sh", table.unpack(argv) }
  end
  argv.env, argv.cwd = env, home
  local r = banger.proc.run(argv)
  t.truthy(r.code == 0 or r.code == 1, r.stderr)
  t.eq(r.stderr, "", "doctor itself did not fail")
  return banger.json.decode(r.stdout)
end

local function check_named(report, name)
  for _, c in ipairs(report.checks) do
    if c.name == name then
      return c
    end
  end
  error("no check named " .. name)
end

describe("doctor", function()
  it("reports each prerequisite as JSON, a fix for every problem", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { driver = { qemu_bin = "/nonexistent/qemu" } }\n')
    local r = t.banger({ "doctor", "--json" }, { home = home })
    t.eq(r.code, 1, "a failed check makes doctor fail")
    local report = banger.json.decode(r.stdout)
    local by_name = {}
    for _, c in ipairs(report.checks) do
      t.truthy(c.name and c.detail and c.needed_for, banger.json.encode(c))
      t.truthy(c.status == "ok" or c.status == "warn" or c.status == "fail", c.status)
      if c.status ~= "ok" then
        t.truthy(c.fix and #c.fix > 0, c.name .. " has no fix")
      end
      by_name[c.name] = c
    end
    for _, name in ipairs({ "qemu", "kvm", "tun", "privileges", "isolation", "bridge", "nft", "disk space", "default kernel",
      "default image" }) do
      t.truthy(by_name[name], "check " .. name)
    end
    t.eq(by_name.qemu.status, "fail")
    t.eq(report.failed >= 1, true)
  end)

  it("names driver.qemu_bin when the configured QEMU is missing, a package when the default one is", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { driver = { qemu_bin = "/nonexistent/qemu" } }\n')
    local qemu = check_named(doctor(home), "qemu")
    t.eq(qemu.status, "fail")
    t.contains(qemu.detail, "/nonexistent/qemu (driver.qemu_bin) not found")
    t.contains(qemu.fix, "set driver.qemu_bin in " .. home .. "/.config/banger/config.lua")
    t.not_contains(qemu.fix, "apt-get")
    qemu = check_named(doctor(t.tmpdir(), { path = bare_path() }), "qemu")
    t.eq(qemu.status, "fail")
    t.eq(qemu.fix, "apt-get install qemu-system-x86")
  end)

  it("with driver.name = firecracker, a missing firecracker or KVM is a failure, not 'VMs use QEMU'", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua",
      'return { driver = { name = "firecracker", firecracker_bin = "/nonexistent/firecracker" } }\n')
    local report = doctor(home)
    local fc = check_named(report, "firecracker")
    t.eq(fc.status, "fail")
    t.not_contains(fc.detail, "VMs use QEMU")
    t.contains(fc.detail, "driver.name is firecracker")
    t.contains(fc.fix, "set driver.firecracker_bin")
    if not banger.vmm.detect().kvm_usable then -- these hosts: only kvm_pvm
      local kvm = check_named(report, "kvm")
      t.eq(kvm.status, "fail")
      t.contains(kvm.detail, "driver.name is firecracker, which needs KVM")
      t.not_contains(kvm.detail, "falls back to TCG")
    end
    -- the default driver still says what happens without firecracker
    t.contains(check_named(doctor(t.tmpdir()), "firecracker").detail, "VMs use QEMU")
  end)

  it("reports missing ip and df as findings, not Lua errors", function()
    local report = doctor(t.tmpdir(), { path = bare_path() })
    for _, c in ipairs(report.checks) do
      t.not_contains(c.detail, "check failed", c.name)
      t.not_contains(c.detail, "attempt to", c.name)
    end
    local bridge = check_named(report, "bridge")
    t.eq(bridge.status, "warn")
    t.contains(bridge.detail, "ip not found")
    t.eq(bridge.fix, "apt-get install iproute2")
    local disk = check_named(report, "disk space")
    t.contains(disk.detail, "GiB free under ")
  end)

  it("tells a user without root or helper how to get networking", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { helper = { socket = "/nonexistent/helper.sock" } }\n')
    t.env(home)
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local r = banger.proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "doctor",
      "--json", env = t.env(home), cwd = home })
    local report = banger.json.decode(r.stdout)
    for _, c in ipairs(report.checks) do
      if c.name == "privileges" then
        t.eq(c.status, "warn")
        t.contains(c.fix, "sudo banger system install")
        return
      end
    end
    error("no privileges check")
  end)

  it("reports a broken config once, first, with the file, key and fix; skips the checks that read it", function()
    local home = t.tmpdir()
    local path = home .. "/.config/banger/config.lua"
    t.write(path, "return {\n  vm = { cpus = 4 },\n}\n")
    local report = doctor(home)
    local first = report.checks[1]
    t.eq(first.name, "config")
    t.eq(first.status, "fail")
    t.eq(first.detail, path .. ":2: vm.cpus: unknown key (did you mean vm.vcpus?)")
    t.eq(first.fix, "rename vm.cpus to vm.vcpus in " .. path)
    local mentions, skipped, ran = 0, {}, {}
    for i, c in ipairs(report.checks) do
      t.not_contains(c.detail, "check failed", c.name)
      t.not_contains(c.fix or "", "report it", c.name)
      if c.detail:find("vm.cpus", 1, true) then
        mentions = mentions + 1
      end
      if i > 1 then
        t.truthy(c.status == "ok" or c.status == "warn" or c.status == "fail" or c.status == "skip", c.status)
        if c.status == "skip" then
          skipped[c.name] = c
          t.contains(c.detail, "reads the config")
          t.eq(c.fix, banger.json.null, "the fix is the config check's")
        else
          ran[c.name] = c
        end
      end
    end
    t.eq(mentions, 1, "the config error is reported once")
    for _, name in ipairs({ "qemu", "firecracker", "isolation", "bridge", "default kernel" }) do
      t.truthy(skipped[name], name .. " reads the config and is skipped")
    end
    for _, name in ipairs({ "tun", "nft", "git", "busybox", "disk space" }) do
      t.truthy(ran[name], name .. " needs no config and still runs")
    end
    t.eq(report.failed, 1 + (function()
      local n = 0
      for _, c in pairs(ran) do
        n = n + (c.status == "fail" and 1 or 0)
      end
      return n
    end)(), "skipped checks are not counted as failed")
    local n_skipped = 0
    for _ in pairs(skipped) do
      n_skipped = n_skipped + 1
    end
    t.eq(report.skipped, n_skipped)

    local text = t.banger({ "doctor" }, { home = home })
    t.eq(text.code, 1)
    local line1 = text.stdout:match("^[^\n]+")
    t.eq(line1, "FAIL  config          " .. path .. ":2: vm.cpus: unknown key (did you mean vm.vcpus?)")
    t.contains(text.stdout, "fix: rename vm.cpus to vm.vcpus in " .. path)
    t.contains(text.stdout, "\nskip  qemu ")
    t.contains(text.stdout, "check(s) failed, " .. n_skipped .. " skipped until the config loads\n")
  end)

  it("names a bad value's key, an unknown key without a near miss, and a syntax error's line", function()
    local home = t.tmpdir()
    local path = home .. "/.config/banger/config.lua"
    t.write(path, "return { vm = { vcpus = 0 } }\n")
    local c = doctor(home).checks[1]
    t.eq(c.detail, path .. ":1: vm.vcpus: must be between 1 and 32, got 0")
    t.eq(c.fix, "fix vm.vcpus in " .. path .. " (docs/config.md has its type and rules)")
    t.write(path, "return { colour = 1 }\n")
    c = doctor(home).checks[1]
    t.eq(c.detail, path .. ":1: colour: unknown key")
    t.eq(c.fix, "remove colour from " .. path .. " (docs/config.md lists every key)")
    t.write(path, "return {\n")
    c = doctor(home).checks[1]
    t.contains(c.detail, path .. ":2:")
    t.contains(c.fix, "fix " .. path)
  end)

  it("says the config is valid, or that there is none", function()
    local home = t.tmpdir()
    local c = doctor(home).checks[1]
    t.eq(c.name, "config")
    t.eq(c.status, "ok")
    t.eq(c.detail, home .. "/.config/banger/config.lua is valid")
    banger.fs.remove(home .. "/.config/banger/config.lua")
    local r = banger.proc.run({ t.bin(), "doctor", "--json", env = {
      "HOME=" .. home, "XDG_CONFIG_HOME=" .. home .. "/.config", "XDG_STATE_HOME=" .. home .. "/.local/state",
      "XDG_CACHE_HOME=" .. home .. "/.cache", "XDG_RUNTIME_DIR=" .. home .. "/run", "PATH=" .. os.getenv("PATH") },
      cwd = home })
    c = banger.json.decode(r.stdout).checks[1]
    t.eq(c.status, "ok")
    t.eq(c.detail, "no " .. home .. "/.config/banger/config.lua: every setting is the default")
  end)

  it("checks what driver.isolate needs: a binary root may run, a helper", function()
    local function isolation(config, uid)
      local home = t.tmpdir()
      t.write(home .. "/.config/banger/config.lua", config)
      t.env(home)
      banger.proc.run({ "chown", "-R", uid .. ":" .. uid, home })
      local r = banger.proc.run({ "setpriv", "--reuid=" .. uid, "--regid=" .. uid, "--clear-groups", t.bin(), "doctor",
        "--json", env = t.env(home), cwd = home })
      for _, c in ipairs(banger.json.decode(r.stdout).checks) do
        if c.name == "isolation" then
          return c
        end
      end
      error("no isolation check")
    end
    t.eq(isolation("return {}\n", 0).status, "ok")
    local copy = t.tmpdir() .. "/qemu-system-x86_64"
    banger.proc.run({ "cp", "/usr/bin/qemu-system-x86_64", copy })
    banger.proc.run({ "chmod", "0775", copy })
    local c = isolation(string.format("return { driver = { isolate = true, qemu_bin = %q } }\n", copy), 0)
    t.eq(c.status, "fail")
    t.contains(c.detail, "writable by group or others")
    c = isolation('return { driver = { isolate = true }, helper = { socket = "/nonexistent/h.sock" } }\n', 65534)
    t.eq(c.status, "fail")
    t.contains(c.fix, "sudo banger system install")
    t.eq(isolation("return { driver = { isolate = true } }\n", 0).status, "ok")
  end)
end)
