-- banger system install/status/uninstall: the unit passes systemd-analyze
-- verify and carries its hardening, install refuses what would let the
-- owner run code as root, and uninstall removes exactly what banger added
-- (run for real on a namespace's bridges and NAT, with its own /run).
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local function unit_path(root)
  return root .. "/etc/systemd/system/banger-helper.service"
end

describe("system install", function()
  it("writes a hardened unit that systemd-analyze verifies, and a record", function()
    local root = t.tmpdir()
    local r = t.banger({ "system", "install", "--owner", "nobody", "--root", root, "--json" })
    t.eq(r.code, 0, r.stderr)
    local rec = banger.json.decode(r.stdout)
    t.eq({ rec.owner, rec.owner_uid, rec.socket }, { "nobody", 65534, "/run/banger/helper.sock" })
    local unit = t.read(unit_path(root))
    for _, line in ipairs({ "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
      "CapabilityBoundingSet=CAP_NET_ADMIN CAP_CHOWN CAP_FOWNER CAP_SETUID CAP_SETGID CAP_KILL",
      "KillMode=process", "DeviceAllow=/dev/kvm rw", "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
      "DevicePolicy=closed", "DeviceAllow=/dev/net/tun rw", "UMask=0077",
      "--socket /run/banger/helper.sock --owner 65534:65534" }) do
      t.contains(unit, line)
    end
    local v = banger.proc.run({ "systemd-analyze", "verify", unit_path(root) })
    t.eq(v.code, 0, v.stderr)
    t.eq(v.stderr, "", "no warnings from systemd-analyze")
    t.eq(banger.json.decode(t.read(root .. "/etc/banger/install.json")).owner_uid, 65534)
  end)

  it("refuses root as the owner, unknown users, and non-root callers", function()
    local root = t.tmpdir()
    local r = t.banger({ "system", "install", "--owner", "root", "--root", root })
    t.eq(r.code ~= 0, true)
    t.contains(r.stderr, "ordinary user")
    r = t.banger({ "system", "install", "--owner", "no-such-user-here", "--root", root })
    t.contains(r.stderr, "no such user")
    local home = t.tmpdir()
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local nr = banger.proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "system",
      "install", "--owner", "nobody", env = t.env(home), cwd = home })
    t.eq(nr.code ~= 0, true)
    t.contains(nr.stderr, "must run as root")
    t.falsy(banger.fs.exists(unit_path(root)), "nothing written")
  end)

  it("refuses a helper binary its owner could swap", function()
    local dir = t.tmpdir()
    banger.proc.run({ "cp", t.bin(), dir .. "/banger" })
    banger.proc.run({ "cp", os.getenv("BANGER_BUILD_DIR") .. "/banger-helper", dir .. "/banger-helper" })
    banger.proc.run({ "chown", "65534:65534", dir .. "/banger-helper" })
    local root = t.tmpdir()
    local r = banger.proc.run({ dir .. "/banger", "system", "install", "--owner", "nobody", "--root", root,
      env = t.env(t.tmpdir()) })
    t.eq(r.code ~= 0, true)
    t.contains(r.stderr, "not root")
    banger.proc.run({ "chown", "0:0", dir .. "/banger-helper" })
    banger.proc.run({ "chmod", "0775", dir .. "/banger-helper" })
    r = banger.proc.run({ dir .. "/banger", "system", "install", "--owner", "nobody", "--root", root,
      env = t.env(t.tmpdir()) })
    t.contains(r.stderr, "writable by group or others")
    t.falsy(banger.fs.exists(unit_path(root)))
  end)
end)

describe("system uninstall", function()
  after_each(function()
    netns.cleanup()
  end)

  it("removes the unit and record, and with --purge the owner's state and cache but not config", function()
    local root, home = t.tmpdir(), t.tmpdir()
    t.eq(t.banger({ "system", "install", "--owner", "nobody", "--root", root }).code, 0)
    -- point the record at a scratch home standing in for the owner's
    local rec = banger.json.decode(t.read(root .. "/etc/banger/install.json"))
    rec.owner_home = home
    t.write(root .. "/etc/banger/install.json", banger.json.encode(rec))
    for _, d in ipairs({ "/.local/state/banger/vms", "/.cache/banger/oci", "/.config/banger" }) do
      banger.fs.mkdir(home .. d, 448, true)
    end
    t.write(root .. "/etc/keep-me", "x")
    local r = t.banger({ "system", "uninstall", "--root", root, "--purge", "--json" })
    t.eq(r.code, 0, r.stderr)
    t.falsy(banger.fs.exists(unit_path(root)))
    t.falsy(banger.fs.exists(root .. "/etc/banger/install.json"))
    t.truthy(banger.fs.exists(root .. "/etc/keep-me"))
    t.falsy(banger.fs.exists(home .. "/.local/state/banger"))
    t.falsy(banger.fs.exists(home .. "/.cache/banger"))
    t.truthy(banger.fs.exists(home .. "/.config/banger"), "config is the user's and stays")
  end)

  it("takes banger's bridges and NAT off the host and leaves everything else", function()
    local ns = netns.new("uninst")
    local function priv(op, params)
      local r = netns.run(ns, { t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", op,
        banger.json.encode(params) }, { env = t.env(t.tmpdir()) })
      t.truthy(banger.json.decode(r.stdout).ok, r.stdout .. r.stderr)
    end
    priv("ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 24 })
    priv("ensure_bridge", { bridge = "br-fc-two", ip = "172.31.0.1", prefix = 24 })
    priv("ensure_nat", { tap = "bgtapu1", guest_ip = "172.30.0.2", bridge = "br-fc" })
    netns.sh({ "ip", "-n", ns, "link", "add", "br-other", "type", "bridge" })
    netns.sh({ "ip", "netns", "exec", ns, "iptables", "-w", "-N", "DOCKER-USER" })
    netns.sh({ "ip", "netns", "exec", ns, "nft", "add", "table", "ip", "someone-else" })
    priv("ensure_nat", { tap = "bgtapu2", guest_ip = "172.30.0.3", bridge = "br-fc" })
    -- its own /run, so removing /run/banger* cannot touch the host's
    local r = netns.run(ns, { "unshare", "--mount", "sh", "-c", 'mount -t tmpfs tmpfs /run && exec "$@"', "sh",
      t.bin(), "system", "uninstall", "--json" }, { env = t.env(t.tmpdir()) })
    t.eq(r.code, 0, r.stderr)
    local links = netns.run(ns, { "ip", "-o", "link", "show" }).stdout
    t.not_contains(links, "br-fc")
    t.contains(links, "br-other")
    local rules = netns.run(ns, { "nft", "list", "ruleset" }).stdout
    t.not_contains(rules, "table ip banger")
    t.contains(rules, "table ip someone-else")
    t.not_contains(netns.run(ns, { "iptables", "-w", "-S" }).stdout, "banger:")
    t.contains(netns.run(ns, { "iptables", "-w", "-S" }).stdout, "-N DOCKER-USER")
  end)
end)

describe("system status", function()
  it("says what to do when the helper does not answer, never to run system status", function()
    local root = t.tmpdir()
    t.eq(t.banger({ "system", "install", "--owner", "nobody", "--root", root }).code, 0)
    local record_path = root .. "/etc/banger/install.json"
    local rec = banger.json.decode(t.read(record_path))
    rec.socket = root .. "/nowhere/helper.sock"
    t.write(record_path, banger.json.encode(rec))
    local r = t.banger({ "system", "status", "--root", root })
    t.eq(r.code, 1)
    t.contains(r.stdout, "helper: not answering: cannot reach the root helper at " .. rec.socket)
    t.contains(r.stdout, "sudo banger system restart")
    t.not_contains(r.stdout .. r.stderr, "system status")
    local j = banger.json.decode(t.banger({ "system", "status", "--root", root, "--json" }).stdout)
    t.eq(j.helper_reachable, false)
    t.not_contains(j.helper_error, "system status")
  end)

  it("other commands point at system status when the helper cannot be reached", function()
    local home = t.tmpdir()
    local sock = home .. "/helper.sock"
    t.write(sock, "") -- there, but nobody listens
    t.write(home .. "/.config/banger/config.lua", string.format("return { helper = { socket = %q } }\n", sock))
    t.write(home .. "/ping.lua", 'banger.priv.call("ping", {})\n')
    t.env(home)
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local r = banger.proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "run",
      home .. "/ping.lua", env = t.env(home), cwd = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "banger: cannot reach the root helper at " .. sock)
    t.contains(r.stderr, "(is it installed and running? see `banger system status`)")
  end)
end)
