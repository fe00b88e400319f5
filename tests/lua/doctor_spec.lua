-- banger doctor: every check reports a status and detail, every problem a fix.
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
    t.contains(by_name.qemu.fix, "apt-get install qemu-system-x86")
    t.eq(report.failed >= 1, true)
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
