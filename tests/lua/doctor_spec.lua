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
    for _, name in ipairs({ "qemu", "kvm", "tun", "privileges", "bridge", "nft", "disk space", "default kernel",
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
end)
