-- Egress allow-lists without a VM: the pattern gate, name matching, and
-- the resolver's decisions (banger.egress.answer) against a fake upstream
-- DNS server on loopback (tests/lua/fixtures/fake_dns.py).
local validate = require("banger.native.validate")
local dns = require("banger.native.dns")
local egress = require("banger.egress")

-- A DNS query for `name` (type A unless `qtype`), id 0x1234, RD set.
local function query(name, qtype)
  local parts = { string.pack(">I2I2I2I2I2I2", 0x1234, 0x0100, 1, 0, 0, 0) }
  for label in name:gmatch("[^.]+") do
    parts[#parts + 1] = string.char(#label) .. label
  end
  parts[#parts + 1] = "\0" .. string.pack(">I2I2", qtype or 1, 1)
  return table.concat(parts)
end

local function rcode(reply)
  return string.byte(reply, 4) & 0xf
end

local function free_port()
  local s = dns.udp_listen("127.0.0.1", 0)
  local port = s:port()
  s:close()
  return port
end

describe("allow-list patterns", function()
  it("accepts names and *. wildcards, lower-cased, without a trailing dot", function()
    t.eq(validate.allow_host("Example.COM."), "example.com")
    t.eq(validate.allow_host("*.Example.com"), "*.example.com")
    t.eq(validate.allow_host("_dmarc.x-y.example"), "_dmarc.x-y.example")
    t.eq(validate.allow_host("localhost"), "localhost")
  end)

  it("refuses everything that is not a DNS name or a leading *.", function()
    local long_label = string.rep("a", 64) .. ".com"
    local long_name = string.rep("abcdefghi.", 26) .. "com" -- 263 characters
    for _, bad in ipairs({ "*", "*.", "", ".", "*foo.com", "foo.*.com", "a..b", "-a.com", "a-.com", "a b.com",
      "a;drop.com", "a\"b.com", "a\nb", "1.2.3.4/8", "*.*.com", "a:80", long_label, long_name }) do
      local ok, why, code = validate.allow_host(bad)
      t.eq(ok, nil, "accepted " .. string.format("%q", bad))
      t.eq(code, "EINVAL")
      t.truthy(why:find("allowed host", 1, true), why)
    end
  end)

  it("matches exact names and subdomains of wildcards only", function()
    local list = { "allowed.test", "*.example.com" }
    t.eq(dns.host_allowed(list, "allowed.test"), true)
    t.eq(dns.host_allowed(list, "a.allowed.test"), false)
    t.eq(dns.host_allowed(list, "api.example.com"), true)
    t.eq(dns.host_allowed(list, "a.b.example.com"), true)
    t.eq(dns.host_allowed(list, "example.com"), false) -- the apex is not a subdomain
    t.eq(dns.host_allowed(list, "evilexample.com"), false)
    t.eq(dns.host_allowed(list, "example.com.evil"), false)
    t.eq(dns.host_allowed({}, "allowed.test"), false)
  end)

  it("config network.allow and the settings go through the same gate", function()
    local e = t.raises(function() banger.config.check("network.allow", { "ok.test", "*" }, "test") end)
    t.contains(banger.errors.message(e), "allowed host")
    local problems = banger.vm_settings.problems({ allow_hosts = { "a..b" } })
    t.eq(#problems, 1)
    t.eq(problems[1].setting, "allow_hosts")
    t.eq(banger.vm_settings.allow_hosts({ allow_hosts = { "A.test", "a.test.", "*.B.test" } }), { "a.test", "*.b.test" })
  end)
end)

describe("the resolver", function()
  local upstream, port, log_path, home
  local row = { id = "0123456789ab", name = "egvm", allow_hosts = '["allowed.test","*.wild.test","alias.test"]' }

  local function start(ttl)
    home = t.tmpdir()
    port = free_port()
    log_path = home .. "/queries.log"
    t.write(log_path, "")
    upstream = t.spawn({ "python3", t.source_dir() .. "/tests/lua/fixtures/fake_dns.py", "127.0.0.1", tostring(port),
      log_path, tostring(ttl), "allowed.test=10.9.0.1", "a.wild.test=10.9.0.2", "other.test=10.9.0.3",
      "alias.test=>target.test", "target.test=10.9.0.4", stdout = "null" })
  end

  local function ctx(opened)
    return {
      vm = function(ip) return ip == "172.30.0.9" and row or nil end,
      upstreams = { "127.0.0.1:" .. port },
      allow = function(r, addresses, ttl)
        opened[#opened + 1] = { vm = r.name, addresses = addresses, ttl = ttl }
      end,
    }
  end

  after_each(function()
    if upstream then
      upstream:kill(9)
      upstream:wait()
      upstream = nil
    end
  end)

  it("forwards an allowed name and opens its addresses before answering", function()
    start(120)
    local opened = {}
    local reply = t.wait_for(function()
      local r = egress.answer(query("Allowed.Test"), "172.30.0.9", ctx(opened))
      return rcode(r) == 0 and r
    end, 10000, "the fake upstream's answer")
    t.eq(dns.answer(reply, "allowed.test").addresses, { { address = "10.9.0.1", ttl = 120 } })
    t.eq(opened[#opened], { vm = "egvm", addresses = { "10.9.0.1" }, ttl = 120 })
    local wild = egress.answer(query("a.wild.test"), "172.30.0.9", ctx(opened))
    t.eq(rcode(wild), 0)
    t.eq(opened[#opened].addresses, { "10.9.0.2" })
  end)

  it("opens the final addresses of a CNAME chain", function()
    start(300)
    local opened = {}
    local reply = t.wait_for(function()
      local r = egress.answer(query("alias.test"), "172.30.0.9", ctx(opened))
      return rcode(r) == 0 and r
    end, 10000, "the fake upstream's answer")
    t.eq(dns.answer(reply, "alias.test").addresses, { { address = "10.9.0.4", ttl = 300 } })
    t.eq(opened[#opened].addresses, { "10.9.0.4" })
  end)

  it("refuses other names and unknown clients without asking upstream", function()
    start(120)
    local opened = {}
    -- the upstream is up (an allowed name gets through) ...
    t.wait_for(function() return rcode(egress.answer(query("allowed.test"), "172.30.0.9", ctx(opened))) == 0 end,
      10000, "the fake upstream")
    local before = #opened
    local reply = egress.answer(query("other.test"), "172.30.0.9", ctx(opened))
    t.eq(rcode(reply), 5)
    t.eq(#reply, #query("other.test")) -- the question echoed, no answer
    t.eq(rcode(egress.answer(query("allowed.test.evil"), "172.30.0.9", ctx(opened))), 5)
    t.eq(rcode(egress.answer(query("allowed.test"), "172.30.0.77", ctx(opened))), 5) -- no VM of ours
    t.eq(#opened, before)
    local seen = t.read(log_path)
    t.not_contains(seen, "other.test")
    t.not_contains(seen, "evil")
  end)

  it("clamps TTLs: the set's timeout and the guest's cache", function()
    start(100000)
    local opened = {}
    local reply = t.wait_for(function()
      local r = egress.answer(query("allowed.test"), "172.30.0.9", ctx(opened))
      return rcode(r) == 0 and r
    end, 10000, "the fake upstream's answer")
    t.eq(opened[#opened].ttl, egress.max_ttl)
    t.eq(dns.answer(reply, "allowed.test").addresses[1].ttl, egress.max_ttl)
    upstream:kill(9)
    upstream:wait()
    start(0)
    reply = t.wait_for(function()
      local r = egress.answer(query("allowed.test"), "172.30.0.9", ctx(opened))
      return rcode(r) == 0 and r
    end, 10000, "the fake upstream's answer")
    t.eq(opened[#opened].ttl, egress.min_ttl)
  end)

  it("answers SERVFAIL when upstream is silent or the addresses cannot be opened", function()
    start(120)
    local failing = ctx({})
    failing.allow = function() banger.errors.raise("EPERM", "no") end
    t.wait_for(function() return rcode(egress.answer(query("allowed.test"), "172.30.0.9", failing)) == 2 end, 10000,
      "SERVFAIL when the set cannot be filled")
    upstream:kill(9)
    upstream:wait()
    upstream = nil
    t.eq(rcode(egress.answer(query("allowed.test"), "172.30.0.9", ctx({}))), 2)
  end)
end)

describe("where allow-lists come from", function()
  local function project_with(text)
    local root = t.tmpdir()
    t.write(root .. "/banger.lua", text)
    return banger.project.load(root)
  end

  it("banger.lua's vm.allow_hosts: checked with the file's line, and only from a trusted project", function()
    local root = t.tmpdir()
    t.write(root .. "/banger.lua", 'vm = {\n  vcpus = 2,\n  allow_hosts = { "ok.test", "*" },\n}\n')
    local e = t.raises(function() banger.project.load(root) end, "EINVAL")
    t.contains(e.message, "/banger.lua:3: vm.allow_hosts")
    local p = project_with('vm = { allow_hosts = { "pypi.org" } }\n')
    t.eq(p.vm.allow_hosts, { "pypi.org" })
    e = t.raises(function() banger.project.vm_settings(p, {}) end, "EUNTRUSTED")
    t.contains(e.message, "vm.allow_hosts gives the VM outbound network access to those names")
    -- --allow-host is the user's own choice, and replaces the file's
    t.eq(banger.project.vm_settings(p, { allow_hosts = { "a.test" } }).allow_hosts, { "a.test" })
  end)

  it("vm create --allow-host stores the list, implies NAT, shows it, and vm set keeps the NAT", function()
    local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
    local home = e2e.home()
    local bad = t.banger({ "vm", "create", "--no-start", "--allow-host", "*", "nope" }, { home = home })
    t.eq(bad.code, 2, bad.stderr)
    t.contains(bad.stderr, "--allow-host")
    local r = t.banger({ "vm", "create", "--no-start", "--image", "tiny", "--no-nat", "--allow-host", "A.test",
      "--allow-host", "*.b.test", "--allow-host", "a.test", "box" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local show = t.banger({ "vm", "show", "box", "--json" }, { home = home })
    local vm = banger.json.decode(show.stdout)
    t.eq(vm.allow_hosts, { "a.test", "*.b.test" })
    t.eq(vm.nat, true, "a list implies NAT, even over --no-nat")
    t.contains(t.banger({ "vm", "show", "box" }, { home = home }).stdout, "allow_hosts    a.test *.b.test")
    local set = t.banger({ "vm", "set", "box", "--no-nat" }, { home = home })
    t.eq(set.code, 2)
    t.contains(set.stderr, "egress allow-list, which needs NAT")
    -- config network.allow is the default list; a VM created without any has none
    t.write(home .. "/.config/banger/config.lua", 'return { network = { allow = { "c.test" } } }\n')
    t.eq(t.banger({ "vm", "create", "--no-start", "--image", "tiny", "dflt" }, { home = home }).code, 0)
    t.eq(banger.json.decode(t.banger({ "vm", "show", "dflt", "--json" }, { home = home }).stdout).allow_hosts,
      { "c.test" })
    t.write(home .. "/.config/banger/config.lua", "return {}\n")
    t.eq(t.banger({ "vm", "create", "--no-start", "--image", "tiny", "none" }, { home = home }).code, 0)
    local none = banger.json.decode(t.banger({ "vm", "show", "none", "--json" }, { home = home }).stdout)
    t.eq(none.allow_hosts, {})
    t.eq(none.nat, false)
    t.contains(t.banger({ "vm", "show", "none" }, { home = home }).stdout, "allow_hosts    -")
    for _, name in ipairs({ "box", "dflt", "none" }) do
      t.eq(t.banger({ "vm", "delete", "-f", name }, { home = home }).code, 0)
    end
  end)
end)
