-- Egress allow-list rules for real, in namespaces the spec makes: a fake
-- guest (a veth on banger's bridge) behind ensure_egress reaches only the
-- addresses egress_allow put in its set, its DNS goes to the resolver's
-- port whatever server it names, the host's other ports are closed to it
-- while the host still reaches the guest; the set's timeouts; removal with
-- the NAT; and the attacks the two new gates must stop.
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local ok, refused = netns.priv_ok, netns.priv_refused

local BRIDGE = { bridge = "br-fc", ip = "172.30.0.1", prefix = 24 }
local HOME = "0123456789abcdef"

local function set_elements(ns, tap)
  local r = netns.run(ns, { "nft", "-j", "list", "set", "ip", "banger", "egress_" .. tap })
  t.eq(r.code, 0, r.stderr)
  local out = {}
  for _, item in ipairs(banger.json.decode(r.stdout).nftables) do
    for _, e in ipairs(item.set and item.set.elem or {}) do
      out[e.elem.val] = { timeout = e.elem.timeout, expires = e.elem.expires }
    end
  end
  return out
end

describe("egress rules", function()
  local world, spawned
  after_each(function()
    for _, p in ipairs(spawned or {}) do
      p:kill(9)
      p:wait()
    end
    spawned = nil
    netns.cleanup(world)
    world = nil
  end)

  it("let the guest reach only its set, send DNS only to the resolver, and go with the NAT", function()
    world = netns.world("allowed\n")
    spawned = {}
    local h = world.host
    -- a second server on the "internet", never allowed
    netns.sh({ "ip", "-n", world.outside, "addr", "add", "10.200.0.3/24", "dev", "eth0" })
    local other = t.tmpdir()
    t.write(other .. "/probe", "other\n")
    spawned[#spawned + 1] = t.spawn({ "ip", "netns", "exec", world.outside, "busybox", "httpd", "-f", "-p",
      "10.200.0.3:8080", "-h", other })
    t.wait_for(function() return netns.fetch(h, "http://10.200.0.3:8080/probe") end, 30000, "the other httpd")
    local before = netns.run(h, { "nft", "list", "ruleset" }).stdout
    ok(h, "ensure_bridge", BRIDGE)
    ok(h, "create_tap", { tap = "bgtapeg1", bridge = "br-fc", home = HOME })
    local guest = netns.guest(h, "br-fc", "172.30.0.2", 24, "172.30.0.1")
    ok(h, "ensure_nat", { tap = "bgtapeg1", guest_ip = "172.30.0.2", bridge = "br-fc" })
    t.eq(netns.fetch(guest, world.url), "allowed\n", "NAT alone reaches the outside")
    local egress = { tap = "bgtapeg1", guest_ip = "172.30.0.2", bridge = "br-fc", resolver_port = 42069 }
    ok(h, "ensure_egress", egress)
    ok(h, "ensure_egress", egress) -- idempotent
    local _, drops = netns.run(h, { "nft", "list", "table", "ip", "banger" }).stdout:gsub(" drop ", "")
    t.eq(drops, 2, "one drop in input, one in forward")
    t.eq(netns.fetch(guest, world.url), nil, "nothing allowed yet")

    ok(h, "egress_allow", { tap = "bgtapeg1", addresses = { "10.200.0.2" }, ttl = 120 })
    t.eq(netns.fetch(guest, world.url), "allowed\n")
    t.eq(netns.fetch(guest, "http://10.200.0.3:8080/probe"), nil, "an address outside the set")
    local el = set_elements(h, "bgtapeg1")["10.200.0.2"]
    t.eq(el.timeout, 120)
    t.truthy(el.expires <= 120 and el.expires > 100, "expires " .. tostring(el.expires))
    ok(h, "egress_allow", { tap = "bgtapeg1", addresses = { "10.200.0.2" }, ttl = 40 })
    t.eq(set_elements(h, "bgtapeg1")["10.200.0.2"].timeout, 40, "a new answer's TTL replaces the old")

    -- DNS to any server lands on the resolver's port on the bridge: a fake
    -- resolver there answers; the outside runs no DNS server at all.
    local log = t.tmpdir() .. "/q.log"
    spawned[#spawned + 1] = t.spawn({ "ip", "netns", "exec", h, "python3",
      t.source_dir() .. "/tests/lua/fixtures/fake_dns.py", "172.30.0.1", "42069", log, "60", "redirected.test=1.2.3.4",
      stdout = "null" })
    local answer = t.wait_for(function()
      local r = netns.run(guest, { "dig", "@10.200.0.2", "+short", "+time=1", "+tries=1", "redirected.test" })
      return r.stdout:match("^%d+%.%d+%.%d+%.%d+\n$") and r.stdout
    end, 20000, "the redirected answer")
    t.eq(answer, "1.2.3.4\n")
    t.contains(t.read(log), "172.30.0.2 redirected.test")

    -- the host's other ports are closed to the guest; the host still reaches the guest
    local www = t.tmpdir()
    t.write(www .. "/probe", "host\n")
    spawned[#spawned + 1] = t.spawn({ "ip", "netns", "exec", h, "busybox", "httpd", "-f", "-p", "172.30.0.1:8081",
      "-h", www })
    spawned[#spawned + 1] = t.spawn({ "ip", "netns", "exec", guest, "busybox", "httpd", "-f", "-p", "172.30.0.2:8082",
      "-h", www })
    t.wait_for(function() return netns.fetch(h, "http://172.30.0.2:8082/probe") end, 30000,
      "the host fetching from the guest")
    t.eq(netns.fetch(h, "http://172.30.0.1:8081/probe"), "host\n")
    t.eq(netns.fetch(guest, "http://172.30.0.1:8081/probe"), nil, "a host port other than the resolver")

    t.truthy(ok(h, "remove_nat", { tap = "bgtapeg1" }).removed >= 8)
    t.eq(netns.run(h, { "nft", "list", "ruleset" }).stdout, before, "banger's tables are gone")
    t.eq(ok(h, "list_nat", {}).table, false)
  end)

  it("census sees egress rules under the tap's tag", function()
    world = { host = netns.new("cen") }
    ok(world.host, "ensure_bridge", BRIDGE)
    ok(world.host, "create_tap", { tap = "bgtapeg2", bridge = "br-fc", home = HOME })
    ok(world.host, "ensure_egress", { tap = "bgtapeg2", guest_ip = "172.30.0.5", bridge = "br-fc", resolver_port = 42069 })
    local inv = ok(world.host, "list_nat", {})
    t.eq(inv.table, true)
    t.eq(inv.taps, { "bgtapeg2" })
    t.eq(inv.table_rules, 10) -- 7 in ip banger (dnat 1, input 3, forward 3), 3 in bridge banger
    ok(world.host, "remove_nat", { tap = "bgtapeg2" })
    t.eq(ok(world.host, "list_nat", {}).table, false)
  end)
end)

describe("the egress gates refuse, and nothing changes", function()
  after_each(function()
    netns.cleanup()
  end)

  it("refuses another user's tap, junk addresses, huge TTLs and injection", function()
    local ns = netns.new("egate")
    ok(ns, "ensure_bridge", BRIDGE)
    ok(ns, "create_tap", { tap = "bgtapmine", bridge = "br-fc", home = HOME })
    -- another user's VM: a tap of uid 4242 on the same bridge
    netns.sh({ "ip", "-n", ns, "tuntap", "add", "dev", "bgtapother", "mode", "tap", "user", "4242" })
    netns.sh({ "ip", "-n", ns, "link", "set", "bgtapother", "master", "br-fc" })
    netns.sh({ "ip", "-n", ns, "link", "add", "br-fc-two", "type", "bridge" })
    netns.sh({ "ip", "-n", ns, "tuntap", "add", "dev", "bgtapelse", "mode", "tap", "user", "0" })
    local good = { tap = "bgtapmine", guest_ip = "172.30.0.2", bridge = "br-fc", resolver_port = 42069 }
    local function with(changes)
      local p = {}
      for k, v in pairs(good) do
        p[k] = v
      end
      for k, v in pairs(changes) do
        p[k] = v
      end
      return p
    end
    local snapshot = netns.run(ns, { "nft", "list", "ruleset" }).stdout

    refused(ns, "ensure_egress", with({ tap = "bgtapother" }), "EPERM", "not owned by uid 0")
    refused(ns, "egress_allow", { tap = "bgtapother", addresses = { "1.2.3.4" }, ttl = 60 }, "EPERM", "not owned")
    refused(ns, "ensure_egress", with({ tap = "bgtapelse" }), "EPERM", "not a port of br-fc")
    refused(ns, "ensure_egress", with({ tap = "bgtapnone" }), "ENOENT")
    refused(ns, "ensure_egress", with({ tap = "bgtap1\"; flush ruleset" }), "EINVAL")
    refused(ns, "ensure_egress", with({ tap = "eth0" }), "EINVAL")
    refused(ns, "ensure_egress", with({ bridge = "eth0" }), "EINVAL")
    refused(ns, "ensure_egress", with({ bridge = "br-fc-two" }), "EPERM", "not a port")
    for _, ip in ipairs({ "10.200.0.9", "172.30.0.1", "172.30.0.0", "172.30.0.255", "127.0.0.1", "0.0.0.0",
      "172.30.0.2 drop", "::1" }) do
      refused(ns, "ensure_egress", with({ guest_ip = ip }), "EINVAL")
    end
    for _, port in ipairs({ 53, 0, 1023, 65536, -1 }) do
      refused(ns, "ensure_egress", with({ resolver_port = port }), "EINVAL", "resolver_port")
    end
    refused(ns, "ensure_egress", with({ resolver_port = "42069" }), "EINVAL", "integer")
    refused(ns, "ensure_egress", with({ extra = true }), "EINVAL", "unexpected field")
    refused(ns, "egress_allow", { tap = "bgtapmine", addresses = { "1.2.3.4" }, ttl = 60 }, "ENOENT", "no egress set")
    t.eq(netns.run(ns, { "nft", "list", "ruleset" }).stdout, snapshot, "nothing made by the refused requests")

    ok(ns, "ensure_egress", good)
    local rules = netns.run(ns, { "nft", "list", "ruleset" }).stdout
    local function allow(params, code, fragment)
      refused(ns, "egress_allow", params, code, fragment)
    end
    for _, a in ipairs({ "10.0.0.256", "1.2.3.4/0", "::1", "0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255",
      "1.2.3.4 }; flush ruleset; add element ip banger egress_bgtapmine { 5.6.7.8", "1.2.3.4, 5.6.7.8", "" }) do
      allow({ tap = "bgtapmine", addresses = { a }, ttl = 60 }, "EINVAL")
    end
    for _, ttl in ipairs({ 0, -1, 86401, 1000000000000 }) do
      allow({ tap = "bgtapmine", addresses = { "1.2.3.4" }, ttl = ttl }, "EINVAL", "ttl")
    end
    allow({ tap = "bgtapmine", addresses = { "1.2.3.4" }, ttl = "60" }, "EINVAL", "integer")
    allow({ tap = "bgtapmine", addresses = { "1.2.3.4" }, ttl = 1.5 }, "EINVAL", "integer")
    allow({ tap = "bgtapmine", addresses = {}, ttl = 60 }, "EINVAL", "addresses")
    allow({ tap = "bgtapmine", addresses = "1.2.3.4", ttl = 60 }, "EINVAL", "addresses")
    allow({ tap = "bgtapmine", addresses = { 16909060 }, ttl = 60 }, "EINVAL", "strings")
    local many = {}
    for i = 1, 65 do
      many[i] = "10.1.0." .. i
    end
    allow({ tap = "bgtapmine", addresses = many, ttl = 60 }, "EINVAL", "addresses")
    allow({ tap = "bgtapmine;", addresses = { "1.2.3.4" }, ttl = 60 }, "EINVAL")
    t.eq(netns.run(ns, { "nft", "list", "ruleset" }).stdout, rules, "the set is still empty")
    ok(ns, "remove_nat", { tap = "bgtapmine" })
  end)
end)
