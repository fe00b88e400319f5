-- Network namespaces for specs that need real bridges, taps and NAT without
-- touching the host's own network: a "host" namespace where banger runs, an
-- "outside" namespace standing in for the internet (a veth away, serving
-- HTTP with busybox), and fake guests (a veth on banger's bridge).
local netns = {}
t.requires_root("makes network namespaces")

local function sh(argv)
  local r = banger.proc.run(argv)
  if r.code ~= 0 then
    error(table.concat(argv, " ") .. ": " .. r.stderr, 2)
  end
  return r.stdout
end
netns.sh = sh

local created = {}

--- A fresh namespace with loopback up; removed by netns.cleanup().
function netns.new(tag)
  local name = string.format("bgt-%s-%d-%d", tag, banger.sys.getpid(), #created)
  sh({ "ip", "netns", "add", name })
  created[#created + 1] = name
  sh({ "ip", "-n", name, "link", "set", "lo", "up" })
  return name
end

--- Runs argv inside namespace `ns`; returns {code, stdout, stderr}.
function netns.run(ns, argv, opts)
  local full = { "ip", "netns", "exec", ns }
  for _, a in ipairs(argv) do
    full[#full + 1] = a
  end
  for k, v in pairs(opts or {}) do
    full[k] = v
  end
  return banger.proc.run(full)
end

--- A function running banger with `home` in namespace `ns`:
-- fn(args [, timeout_ms]) -> proc.run result.
function netns.banger(ns, home)
  return function(args, timeout)
    local argv = { t.bin() }
    for _, a in ipairs(args) do
      argv[#argv + 1] = a
    end
    return netns.run(ns, argv, { env = t.env(home), cwd = home, timeout_ms = timeout or 180000 })
  end
end

--- Links `a` (in ns_a, address cidr_a) and `b` (in ns_b, cidr_b) with a veth pair.
function netns.veth(ns_a, a, cidr_a, ns_b, b, cidr_b)
  sh({ "ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b })
  if cidr_a then
    sh({ "ip", "-n", ns_a, "addr", "add", cidr_a, "dev", a })
  end
  if cidr_b then
    sh({ "ip", "-n", ns_b, "addr", "add", cidr_b, "dev", b })
  end
  sh({ "ip", "-n", ns_a, "link", "set", a, "up" })
  sh({ "ip", "-n", ns_b, "link", "set", b, "up" })
end

--- A host namespace wired to an outside namespace that serves `body` at
-- http://10.200.0.2:8080/probe. The host reaches it directly; guests only
-- through NAT, because the outside has no route back to the guest subnet.
function netns.world(body)
  local w = { host = netns.new("host"), outside = netns.new("out") }
  netns.veth(w.host, "uplink", "10.200.0.1/24", w.outside, "eth0", "10.200.0.2/24")
  local www = t.tmpdir()
  t.write(www .. "/probe", body)
  w.httpd = t.spawn({ "ip", "netns", "exec", w.outside, "busybox", "httpd", "-f", "-p", "10.200.0.2:8080", "-h", www })
  w.url = "http://10.200.0.2:8080/probe"
  -- httpd binds asynchronously; wait until the host can fetch the probe.
  t.wait_for(function() return netns.run(w.host, { "curl", "-sf", "-m", "1", w.url }).code == 0 end, 30000,
    "busybox httpd in " .. w.outside)
  return w
end

--- A fake guest: a namespace whose eth0 is a veth port on `bridge` in the
-- host namespace, with `ip`/`prefix` and a default route via `gateway`.
function netns.guest(host, bridge, ip, prefix, gateway)
  local g = netns.new("guest")
  local port = "gp" .. #created
  netns.veth(host, port, nil, g, "eth0", ip .. "/" .. prefix)
  sh({ "ip", "-n", host, "link", "set", port, "master", bridge })
  sh({ "ip", "-n", g, "route", "add", "default", "via", gateway })
  return g
end

--- Can namespace `ns` fetch `url`? Returns the body or nil.
function netns.fetch(ns, url)
  local r = netns.run(ns, { "curl", "-sf", "-m", "2", url })
  return r.code == 0 and r.stdout or nil
end

function netns.cleanup(world)
  if world and world.httpd then
    world.httpd:kill(9)
    world.httpd:wait()
  end
  for i = #created, 1, -1 do
    banger.proc.run({ "ip", "netns", "delete", created[i] })
  end
  created = {}
end

-- A privileged operation run in-process as root inside namespace `ns`
-- (tests/lua/fixtures/priv_call.lua): its decoded { ok } or { error, message }.
function netns.priv_call(ns, op, params)
  local r = netns.run(ns, { t.bin(), "run", t.source_dir() .. "/tests/lua/fixtures/priv_call.lua", op,
    banger.json.encode(params) }, { env = t.env(t.tmpdir()) })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

-- The operation succeeds.
function netns.priv_ok(ns, op, params)
  local res = netns.priv_call(ns, op, params)
  t.truthy(res.ok, op .. " failed: " .. tostring(res.message))
  return res.ok
end

-- The operation is refused with `code`, its message containing `fragment`.
function netns.priv_refused(ns, op, params, code, fragment)
  local res = netns.priv_call(ns, op, params)
  t.eq(res.error, code, op .. " should be refused: " .. banger.json.encode(params) .. " " .. tostring(res.message))
  if fragment then
    t.contains(res.message, fragment)
  end
end

-- A fake internet outside `world` (netns.world): allowed.test is the
-- world's own HTTP server (10.200.0.2), other.test a second one at
-- 10.200.0.3:8080 serving /probe, both named by a fake DNS server on
-- 10.200.0.2:53 (tests/lua/fixtures/fake_dns.py) that logs every query to
-- `queries`. Returns the processes it started (the caller kills them) and
-- that log's path, once both answer from the world's host namespace.
function netns.fake_internet(world)
  local h, out = world.host, world.outside
  local procs = {}
  netns.sh({ "ip", "-n", out, "addr", "add", "10.200.0.3/24", "dev", "eth0" })
  local www = t.tmpdir()
  t.write(www .. "/probe", "other\n")
  procs[#procs + 1] = t.spawn({ "ip", "netns", "exec", out, "busybox", "httpd", "-f", "-p", "10.200.0.3:8080",
    "-h", www })
  local queries = t.tmpdir() .. "/upstream.log"
  t.write(queries, "")
  procs[#procs + 1] = t.spawn({ "ip", "netns", "exec", out, "python3",
    t.source_dir() .. "/tests/lua/fixtures/fake_dns.py", "10.200.0.2", "53", queries, "120",
    "allowed.test=10.200.0.2", "other.test=10.200.0.3", stdout = "null" })
  t.wait_for(function()
    return netns.fetch(h, "http://10.200.0.3:8080/probe") and netns.run(h, { "dig", "@10.200.0.2", "+short",
      "+time=1", "+tries=1", "allowed.test" }).stdout == "10.200.0.2\n"
  end, 30000, "the fake internet")
  return procs, queries
end

return netns
