-- Host networking for real, inside network namespaces the spec creates:
-- banger's bridge and taps over rtnetlink, NAT in its own nftables table,
-- a fake guest (a veth on the bridge) reaching an "outside" namespace only
-- through that NAT, the Docker-style FORWARD DROP case, and the attacks the
-- privileged-operation gates must stop with nothing changed.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local ok, refused = netns.priv_ok, netns.priv_refused

local function snapshot(ns)
  return {
    links = netns.run(ns, { "ip", "-o", "link", "show" }).stdout:gsub("%s+link/.-\n", "\n"),
    addrs = netns.run(ns, { "ip", "-o", "-4", "addr", "show" }).stdout,
    rules = netns.run(ns, { "nft", "list", "ruleset" }).stdout,
  }
end

local BRIDGE = { bridge = "br-fc", ip = "172.30.0.1", prefix = 24 }
local HOME = "0123456789abcdef" -- a banger home's mark (net.home_tag)

describe("bridge and taps", function()
  after_each(function()
    netns.cleanup()
  end)

  it("creates the bridge once, then reuses it", function()
    local ns = netns.new("br")
    ok(ns, "ensure_bridge", BRIDGE)
    ok(ns, "ensure_bridge", BRIDGE)
    local addrs = netns.run(ns, { "ip", "-o", "-4", "addr", "show", "dev", "br-fc" }).stdout
    local _, count = addrs:gsub("inet 172%.30%.0%.1/24", "")
    t.eq(count, 1, addrs)
    t.contains(netns.run(ns, { "ip", "-d", "link", "show", "br-fc" }).stdout, "bridge")
  end)

  it("makes a persistent tap on the bridge and deletes only taps", function()
    local ns = netns.new("tap")
    ok(ns, "ensure_bridge", BRIDGE)
    ok(ns, "create_tap", { tap = "bgtap0123abcd", bridge = "br-fc", home = HOME })
    local d = netns.run(ns, { "ip", "-d", "link", "show", "bgtap0123abcd" }).stdout
    t.contains(d, "master br-fc")
    t.contains(d, "tun type tap")
    t.contains(d, "persist on")
    t.contains(d, "alias banger:" .. HOME)
    ok(ns, "create_tap", { tap = "bgtap0123abcd", bridge = "br-fc", home = HOME }) -- idempotent
    t.eq(ok(ns, "delete_tap", { tap = "bgtap0123abcd" }).deleted, true)
    t.eq(ok(ns, "delete_tap", { tap = "bgtap0123abcd" }).deleted, false)
  end)
end)

describe("the gates refuse, and nothing changes", function()
  after_each(function()
    netns.cleanup()
  end)

  it("refuses host interfaces, bad prefixes and impostor links", function()
    local ns = netns.new("gate")
    ok(ns, "ensure_bridge", BRIDGE)
    -- a veth whose name passes the tap gate: the kind check must stop it
    netns.sh({ "ip", "-n", ns, "link", "add", "bgtapimpostor", "type", "veth", "peer", "name", "peer0" })
    netns.sh({ "ip", "-n", ns, "link", "add", "br-fc-notabr", "type", "veth", "peer", "name", "peer1" })
    local before = snapshot(ns)
    for _, bridge in ipairs({ "eth0", "docker0", "lo", "br-f", "br-fc-" .. string.rep("x", 12) }) do
      refused(ns, "ensure_bridge", { bridge = bridge, ip = "172.30.0.1", prefix = 24 }, "EINVAL")
    end
    refused(ns, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 4 }, "EINVAL", "between 8 and 32")
    refused(ns, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 64 }, "EINVAL", "between 8 and 32")
    refused(ns, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0", prefix = 24 }, "EINVAL")
    for _, ip in ipairs({ "0.0.0.0", "127.0.0.1", "255.255.255.255", "224.0.0.1", "240.0.0.1" }) do
      refused(ns, "ensure_bridge", { bridge = "br-fc-bad", ip = ip, prefix = 24 }, "EINVAL", "invalid IPv4 address")
    end
    refused(ns, "ensure_bridge", { bridge = "br-fc-bad", ip = "172.31.0.0", prefix = 24 }, "EINVAL", "network's own")
    refused(ns, "ensure_bridge", { bridge = "br-fc-bad", ip = "172.31.0.255", prefix = 24 }, "EINVAL", "broadcast")
    refused(ns, "ensure_bridge", { bridge = "br-fc-bad", ip = "172.31.0.1", prefix = 32 }, "EINVAL", "no address for guests")
    refused(ns, "ensure_nat", { tap = "bgtap1", guest_ip = "0.0.0.0", bridge = "br-fc" }, "EINVAL")
    refused(ns, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = "24" }, "EINVAL", "integer")
    refused(ns, "ensure_bridge", { bridge = "br-fc", ip = "172.30.0.1", prefix = 24, extra = 1 }, "EINVAL",
      "unexpected field")
    refused(ns, "ensure_bridge", { bridge = "br-fc-notabr", ip = "172.30.0.1", prefix = 24 }, "EEXIST", "not a bridge")
    refused(ns, "create_tap", { tap = "eth1", bridge = "br-fc", home = HOME }, "EINVAL")
    refused(ns, "create_tap", { tap = "bgtap1", bridge = "docker0", home = HOME }, "EINVAL")
    refused(ns, "create_tap", { tap = "bgtapimpostor", bridge = "br-fc", home = HOME }, "EEXIST")
    refused(ns, "create_tap", { tap = "bgtap1", bridge = "br-fc" }, "EINVAL", "missing field 'home'")
    for _, home in ipairs({ "", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "0123456789abcdeg",
      "x\nalias evil" }) do
      refused(ns, "create_tap", { tap = "bgtap1", bridge = "br-fc", home = home }, "EINVAL", "home tag")
    end
    refused(ns, "delete_tap", { tap = "bgtapimpostor" }, "EPERM", "not a tun")
    refused(ns, "delete_tap", { tap = "uplink" }, "EINVAL")
    refused(ns, "delete_bridge", { bridge = "br-fc-notabr" }, "EPERM")
    refused(ns, "ensure_nat", { tap = "bgtap1", guest_ip = "10.0.0.256", bridge = "br-fc" }, "EINVAL")
    refused(ns, "ensure_nat", { tap = "eth0", guest_ip = "172.30.0.2", bridge = "br-fc" }, "EINVAL")
    refused(ns, "remove_nat", { tap = "docker0" }, "EINVAL")
    refused(ns, "route_vm_dns", { bridge = "eth0", resolver = "127.0.0.1:42069" }, "EINVAL")
    refused(ns, "route_vm_dns", { bridge = "br-fc", resolver = "127.0.0.1" }, "EINVAL")
    refused(ns, "route_vm_dns", { bridge = "br-fc", resolver = "127.0.0.1:0" }, "EINVAL")
    refused(ns, "route_vm_dns", { bridge = "br-fc", resolver = "127.0.0.1:99999" }, "EINVAL")
    refused(ns, "route_vm_dns", { bridge = "br-fc", resolver = "localhost:53" }, "EINVAL")
    refused(ns, "unroute_vm_dns", { bridge = "docker0" }, "EINVAL")
    refused(ns, "run", { argv = { "sh" } }, "ENOSYS")
    t.eq(snapshot(ns), before)
  end)

  it("needs root or the helper: a non-root banger is told why", function()
    local home = t.tmpdir()
    banger.proc.run({ "chown", "-R", "65534:65534", home })
    local r = banger.proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "run",
      t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", "ensure_bridge", banger.json.encode(BRIDGE),
      env = t.env(home), cwd = home })
    t.eq(r.code, 0, r.stderr)
    local res = banger.json.decode(r.stdout)
    t.eq(res.error, "EPERM")
    t.contains(res.message, "not running as root")
  end)
end)

describe("NAT", function()
  local world
  after_each(function()
    netns.cleanup(world)
    world = nil
  end)

  local function guest_behind_bridge(tap)
    ok(world.host, "ensure_bridge", BRIDGE)
    ok(world.host, "create_tap", { tap = tap, bridge = "br-fc", home = HOME })
    return netns.guest(world.host, "br-fc", "172.30.0.2", 24, "172.30.0.1")
  end

  it("gives one guest the outside through banger's table, and takes it back", function()
    world = netns.world("hello from outside\n")
    local guest = guest_behind_bridge("bgtapnat1")
    t.eq(netns.fetch(guest, world.url), nil, "no NAT yet: the outside cannot answer the guest")
    local before = netns.run(world.host, { "nft", "list", "ruleset" }).stdout
    ok(world.host, "ensure_nat", { tap = "bgtapnat1", guest_ip = "172.30.0.2", bridge = "br-fc" })
    ok(world.host, "ensure_nat", { tap = "bgtapnat1", guest_ip = "172.30.0.2", bridge = "br-fc" }) -- idempotent
    local rules = netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).stdout
    local _, n = rules:gsub("masquerade", "")
    t.eq(n, 1, rules)
    t.eq(netns.fetch(guest, world.url), "hello from outside\n")
    t.eq(ok(world.host, "remove_nat", { tap = "bgtapnat1" }).removed, 1)
    t.eq(netns.run(world.host, { "nft", "list", "ruleset" }).stdout, before, "banger's table is gone")
    t.eq(netns.fetch(guest, world.url), nil, "NAT removed")
  end)

  it("works behind Docker's FORWARD DROP and leaves Docker's rules alone", function()
    world = netns.world("through docker\n")
    local h = world.host
    netns.sh({ "ip", "netns", "exec", h, "iptables", "-w", "-P", "FORWARD", "DROP" })
    netns.sh({ "ip", "netns", "exec", h, "iptables", "-w", "-N", "DOCKER-USER" })
    netns.sh({ "ip", "netns", "exec", h, "iptables", "-w", "-A", "DOCKER-USER", "-j", "RETURN" })
    netns.sh({ "ip", "netns", "exec", h, "iptables", "-w", "-A", "FORWARD", "-j", "DOCKER-USER" })
    local docker = netns.run(h, { "iptables", "-w", "-S" }).stdout
    local guest = guest_behind_bridge("bgtapdock")
    ok(h, "ensure_nat", { tap = "bgtapdock", guest_ip = "172.30.0.2", bridge = "br-fc" })
    local user_chain = netns.run(h, { "iptables", "-w", "-S", "DOCKER-USER" }).stdout
    t.contains(user_chain, "banger:bgtapdock")
    t.eq(netns.fetch(guest, world.url), "through docker\n")
    t.eq(ok(h, "remove_nat", { tap = "bgtapdock" }).removed, 3)
    t.eq(netns.run(h, { "iptables", "-w", "-S" }).stdout, docker, "Docker's rules exactly as before")
    t.eq(netns.fetch(guest, world.url), nil)
  end)

  it("keeps other VMs' rules when one VM's NAT goes", function()
    world = netns.world("x\n")
    ok(world.host, "ensure_bridge", BRIDGE)
    ok(world.host, "ensure_nat", { tap = "bgtapa", guest_ip = "172.30.0.2", bridge = "br-fc" })
    ok(world.host, "ensure_nat", { tap = "bgtapb", guest_ip = "172.30.0.3", bridge = "br-fc" })
    ok(world.host, "remove_nat", { tap = "bgtapa" })
    local rules = netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).stdout
    t.not_contains(rules, "bgtapa")
    t.contains(rules, "172.30.0.3")
  end)
end)
