-- Guest networking end to end: a real kernel under QEMU in a network
-- namespace of the test's own, banger making the bridge, tap and NAT, the
-- guest (busybox, no DHCP) configured by banger's init from ip= and
-- banger.dns=, reaching an "outside" namespace only through NAT, and
-- nothing left on the host once the VM is gone.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

describe("guest networking on a real kernel", function()
  local world
  after_each(function()
    if world then
      banger.proc.run({ "rm", "-rf", "/etc/netns/" .. world.host })
    end
    netns.cleanup(world)
    world = nil
  end)

  it("vm run --nat: address, resolver, <vm>.vm, the outside through NAT, then nothing left", function()
    world = netns.world("hello guest\n")
    -- ip netns exec shows this file as the namespace's /etc/resolv.conf: a
    -- loopback stub first (which the guest must never get), then a real one.
    t.write("/etc/netns/" .. world.host .. "/resolv.conf", "nameserver 127.0.0.53\nnameserver 10.200.0.2\n")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local script = table.concat({
      "ip -4 -o addr show dev eth0",
      "cat /etc/resolv.conf",
      "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc 10.200.0.2 8080 | tail -n 1",
    }, "; ")
    local r = netns.run(world.host, { t.bin(), "vm", "run", "--nat", "--name", "netvm", "--image", "tiny",
      "--memory", "256MiB", "--", "sh", "-c", script },
      { env = t.env(home), cwd = t.tmpdir(), timeout_ms = 240000 })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "inet 172.30.0.2/24")
    t.contains(r.stdout, "nameserver 10.200.0.2")
    t.not_contains(r.stdout, "127.0.0.53")
    t.contains(r.stdout, "hello guest")

    -- <vm>.vm answers for the running VM (the responder started with it)
    local answer = t.wait_for(function()
      local out = netns.run(world.host, { "dig", "@127.0.0.1", "-p", "42069", "+short", "+time=1", "+tries=1",
        "netvm.vm" }).stdout
      return out ~= "" and out
    end, 30000, "the VM's DNS answer")
    t.eq(answer, "172.30.0.2\n")
    local del = netns.run(world.host, { t.bin(), "vm", "delete", "-f", "netvm" }, { env = t.env(home), cwd = home })
    t.eq(del.code, 0, del.stderr)

    local links = netns.run(world.host, { "ip", "-o", "link", "show" }).stdout
    t.not_contains(links, "bgtap")
    t.eq(netns.run(world.host, { "nft", "list", "table", "ip", "banger" }).code ~= 0, true, "banger's NAT table is gone")
  end)

  it("without --nat the guest has its address but no way out", function()
    world = netns.world("unreachable\n")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local r = netns.run(world.host, { t.bin(), "vm", "run", "--rm", "--image", "tiny", "--memory", "256MiB", "--",
      "sh", "-c", "ip -4 -o addr show dev eth0; ip route; printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 10.200.0.2 8080 || echo no-route" },
      { env = t.env(home), cwd = t.tmpdir(), timeout_ms = 240000 })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "inet 172.30.0.2/24")
    t.contains(r.stdout, "default via 172.30.0.1")
    t.not_contains(r.stdout, "unreachable")
  end)
end)
