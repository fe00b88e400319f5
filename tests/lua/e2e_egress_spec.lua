-- Egress allow-lists end to end: a real kernel under QEMU in namespaces of
-- the test's own. The "internet" namespace runs a fake upstream DNS server
-- (tests/lua/fixtures/fake_dns.py: allowed.test and other.test) and two
-- HTTP servers. A VM allowed allowed.test fetches it by name, cannot
-- resolve other.test, cannot reach the other server by address, and cannot
-- ask the upstream server directly; its fork has the same list; a VM
-- without a list, running beside it, reaches both as today. Nothing is left once the VMs are gone.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

describe("egress allow-lists on a real kernel", function()
  local world, spawned, home
  after_each(function()
    if world and home then
      -- a failed assertion must not leave the VMs running
      for _, vm in ipairs({ "egf-1", "egvm", "plain" }) do
        netns.run(world.host, { t.bin(), "vm", "delete", "-f", vm }, { env = t.env(home), cwd = home })
      end
    end
    home = nil
    if world then
      banger.proc.run({ "rm", "-rf", "/etc/netns/" .. world.host })
    end
    for _, p in ipairs(spawned or {}) do
      p:kill(9)
      p:wait()
    end
    spawned = nil
    netns.cleanup(world)
    world = nil
  end)

  it("--allow-host allowed.test: that name only, no other address, no other DNS server", function()
    world = netns.world("allowed\n")
    local h = world.host
    local queries
    spawned, queries = netns.fake_internet(world)
    t.write("/etc/netns/" .. h .. "/resolv.conf", "nameserver 10.200.0.2\n")
    home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local banger_in = netns.banger(h, home)

    -- (wget -T crashes Debian's busybox 1.35: timeout bounds a dropped connection instead)
    local fetch = "busybox timeout 10 busybox wget -q -O - http://%s:8080/probe 2>&1 || echo FAILED-%s"
    local script = table.concat({
      "cat /etc/resolv.conf",
      "busybox nslookup allowed.test",
      string.format(fetch, "allowed.test", "ALLOWED"),
      "busybox nslookup other.test || echo NO-OTHER-NAME",
      string.format(fetch, "10.200.0.3", "OTHER-IP"),
      "busybox nslookup other.test 10.200.0.2 || echo NO-DIRECT-DNS",
      "busybox nslookup allowed.test 10.200.0.3 || echo NO-ANSWER-THERE",
    }, "; ")
    local r = banger_in({ "vm", "run", "--allow-host", "Allowed.Test", "--name", "egvm", "--image", "tiny",
      "--memory", "256MiB", "--", "sh", "-c", script }, 300000)
    t.eq(r.code, 0, r.stderr)
    local function logs()
      return banger.proc.run({ "sh", "-c", "cat " .. home .. "/.local/state/banger/*.log" }).stdout
    end
    t.contains(r.stdout, "nameserver 172.30.0.1")
    t.contains(r.stdout, "allowed\n")
    t.not_contains(r.stdout, "FAILED-ALLOWED")
    t.contains(r.stdout, "NO-OTHER-NAME")
    t.contains(r.stdout, "FAILED-OTHER-IP")
    t.not_contains(r.stdout, "other\n")
    t.contains(r.stdout, "NO-DIRECT-DNS")
    -- a query sent to any address is answered by banger's resolver
    t.not_contains(r.stdout, "NO-ANSWER-THERE")
    t.not_contains(t.read(queries), "other.test", "no query for other.test reached the upstream")

    -- the answer's address is in the VM's set, for at most the record's TTL
    local show = banger_in({ "vm", "show", "egvm", "--json" })
    t.eq(show.code, 0, show.stderr)
    local info = banger.json.decode(show.stdout)
    t.eq(info.allow_hosts, { "allowed.test" })
    t.eq(info.nat, true)
    local tap = "bgtap" .. info.id:sub(1, 10)
    local set = netns.run(h, { "nft", "-j", "list", "set", "ip", "banger", "egress_" .. tap })
    t.eq(set.code, 0, set.stderr)
    local found
    for _, item in ipairs(banger.json.decode(set.stdout).nftables) do
      for _, e in ipairs(item.set and item.set.elem or {}) do
        found = found or (e.elem.val == "10.200.0.2" and e.elem)
      end
    end
    t.truthy(found, set.stdout)
    t.truthy(found.timeout <= 120 and found.expires <= found.timeout, set.stdout)
    t.contains(banger_in({ "vm", "show", "egvm" }).stdout, "allowed.test")
    local logged = logs()
    t.contains(logged, "refused name other.test for VM egvm")

    -- a fork keeps the list: restoring a snapshot is no way out of it
    local fork = banger_in({ "vm", "fork", "egvm", "--count", "1", "--name", "egf" }, 300000)
    t.eq(fork.code, 0, fork.stderr)
    t.eq(banger.json.decode(banger_in({ "vm", "show", "egf-1", "--json" }).stdout).allow_hosts, { "allowed.test" })
    local fr = banger_in({ "vm", "exec", "egf-1", "--", "sh", "-c", table.concat({
      string.format(fetch, "allowed.test", "ALLOWED"),
      "busybox nslookup other.test || echo NO-OTHER-NAME",
      string.format(fetch, "10.200.0.3", "OTHER-IP") }, "; ") }, 120000)
    t.eq(fr.code, 0, fr.stderr)
    t.contains(fr.stdout, "allowed\n")
    t.contains(fr.stdout, "NO-OTHER-NAME")
    t.contains(fr.stdout, "FAILED-OTHER-IP")
    t.eq(banger_in({ "vm", "delete", "-f", "egf-1" }).code, 0)

    -- a VM without a list, beside it: today's networking
    local plain = banger_in({ "vm", "run", "--nat", "--rm", "--name", "plain", "--image", "tiny", "--memory", "256MiB",
      "--", "sh", "-c", table.concat({ "cat /etc/resolv.conf", string.format(fetch, "allowed.test", "ALLOWED"),
        string.format(fetch, "other.test", "OTHER") }, "; ") }, 300000)
    t.eq(plain.code, 0, plain.stderr)
    t.contains(plain.stdout, "nameserver 10.200.0.2")
    t.contains(plain.stdout, "allowed\n")
    t.contains(plain.stdout, "other\n")
    t.not_contains(plain.stdout, "FAILED")

    local del = banger_in({ "vm", "delete", "-f", "egvm" })
    t.eq(del.code, 0, del.stderr)
    t.not_contains(netns.run(h, { "ip", "-o", "link", "show" }).stdout, "bgtap")
    t.eq(netns.run(h, { "nft", "list", "table", "ip", "banger" }).code ~= 0, true, "table ip banger is gone")
    t.eq(netns.run(h, { "nft", "list", "table", "bridge", "banger" }).code ~= 0, true, "table bridge banger is gone")
  end)
end)
