-- Port forwarding end to end: a real kernel under QEMU, bridged in a
-- network namespace of the test's own, busybox httpd in the guest on port
-- 8000 and a UDP echo on 8001; `--publish` and `vm forward` make host
-- ports 127.0.0.1:18080 and :18081/udp reach them; a taken port fails
-- clearly; a stop and start keeps them; after `vm delete` the ports are
-- free and no forwarder is left.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local function forwarders(home)
  local out = {}
  for _, pid in ipairs(banger.fs.list("/proc")) do
    local argv = pid:match("^%d+$") and banger.proc.cmdline(tonumber(pid))
    if argv and argv[3] == "forwarder" and argv[5] and argv[5]:find(home, 1, true) == 1 then
      out[#out + 1] = tonumber(pid)
    end
  end
  return out
end

describe("port forwarding to a bridged VM", function()
  after_each(function()
    netns.cleanup()
  end)

  it("TCP and UDP both ways through host ports; a taken port fails; nothing left after delete", function()
    local ns = netns.new("fwd")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local banger_in = netns.banger(ns, home)

    local r = banger_in({ "vm", "create", "--image", "tiny", "--memory", "256MiB", "--publish", "18080:8000",
      "fwd" }, 240000)
    t.eq(r.code, 0, r.stderr)
    local pids = forwarders(home)
    t.eq(#pids, 1, "one forwarder for the VM once it runs")

    -- the guest's servers: busybox httpd on 8000, the UDP echo on 8001
    e2e.forward_targets(netns, ns, home, "fwd", "hello from the guest", "8000")

    -- TCP: an HTTP GET of the host port returns the guest's page
    t.eq(e2e.forwarded_page(netns, ns, 18080), "hello from the guest\n")

    -- UDP: added to the running VM (the forwarder restarts with both)
    r = banger_in({ "vm", "forward", "fwd", "18081:8001/udp" })
    t.eq(r.code, 0, r.stderr)
    t.eq(e2e.forwarded_echo(netns, ns, 18081, "ping over udp"), "echo:ping over udp\n")
    -- and TCP still works after the restart
    t.eq(netns.run(ns, { "curl", "-sf", "-m", "5", "http://127.0.0.1:18080/index.html" }).stdout,
      "hello from the guest\n")

    -- a second forward of 18080 fails, naming the VM that has it
    r = banger_in({ "vm", "forward", "fwd", "18080:9000" })
    t.eq(r.code, 1)
    t.contains(r.stderr, "host port 127.0.0.1:18080/tcp is already forwarded to VM 'fwd'")
    -- a host port another program holds fails with EADDRINUSE and is not recorded
    local holder = t.spawn({ "ip", "netns", "exec", ns, e2e.udp_echo_bin(), "serve", "18082" })
    t.wait_for(function()
      return netns.run(ns, { e2e.udp_echo_bin(), "send", "127.0.0.1", "18082", "x" }).code == 0
    end, 30000, "the host's own UDP server on 18082")
    r = banger_in({ "vm", "forward", "fwd", "18082:8001/udp" })
    holder:kill(9)
    holder:wait()
    t.eq(r.code, 1)
    t.contains(r.stderr, "host port 127.0.0.1:18082/udp is already in use by another program")

    r = banger_in({ "vm", "forward", "fwd", "--list", "--json" })
    t.eq(r.code, 0, r.stderr)
    local list = json_doc.conforms("vm forward", r.stdout)
    t.eq(#list, 2)
    t.eq({ list[1].host_port, list[1].proto, list[1].active }, { 18080, "tcp", true })
    t.eq({ list[2].host_port, list[2].proto, list[2].active }, { 18081, "udp", true })
    -- vm ports names the host port forwarded to the guest's listener
    r = banger_in({ "vm", "ports", "fwd", "--json" })
    t.eq(r.code, 0, r.stderr)
    local http
    for _, l in ipairs(json_doc.conforms("vm ports", r.stdout).listeners) do
      if l.proto == "tcp" and l.port == 8000 then
        http = l
      end
    end
    t.truthy(http, r.stdout)
    t.eq(http.forwarded, { "127.0.0.1:18080" })
    r = banger_in({ "vm", "ports", "fwd" })
    t.contains(r.stdout, "fwd.vm:8000, 127.0.0.1:18080")
    -- the forwards still work after the failed attempts
    t.eq(netns.run(ns, { e2e.udp_echo_bin(), "send", "127.0.0.1", "18081", "again" }).stdout, "echo:again\n")

    -- forwards are part of the VM: stopped with it, back when it starts
    r = banger_in({ "vm", "stop", "fwd" })
    t.eq(r.code, 0, r.stderr)
    t.eq(forwarders(home), {}, "no forwarder while the VM is stopped")
    r = banger_in({ "vm", "forward", "fwd", "--list", "--json" })
    t.eq({ #banger.json.decode(r.stdout), banger.json.decode(r.stdout)[1].active }, { 2, false })
    r = banger_in({ "vm", "start", "fwd" }, 240000)
    t.eq(r.code, 0, r.stderr)
    t.eq(#forwarders(home), 1, "the forwarder is back with the VM")
    r = banger_in({ "vm", "exec", "fwd", "--", "sh", "-c",
      "mkdir -p /tmp/www && echo 'after a restart' > /tmp/www/index.html && "
        .. "busybox httpd -p 8000 -h /tmp/www </dev/null >/dev/null 2>&1" })
    t.eq(r.code, 0, r.stderr)
    t.eq(t.wait_for(function()
      local got = netns.run(ns, { "curl", "-sf", "-m", "5", "http://127.0.0.1:18080/index.html" })
      return got.code == 0 and got.stdout
    end, 60000, "the page through 18080 after a restart"), "after a restart\n")

    r = banger_in({ "vm", "delete", "-f", "fwd" })
    t.eq(r.code, 0, r.stderr)
    t.eq(forwarders(home), {}, "no forwarder after delete")
    t.truthy(netns.run(ns, { "curl", "-s", "-m", "2", "http://127.0.0.1:18080/" }).code ~= 0, "18080 is free")
    -- free for anyone: bind it ourselves
    local again = t.spawn({ "ip", "netns", "exec", ns, e2e.udp_echo_bin(), "serve", "18081" })
    t.eq(t.wait_for(function()
      local got = netns.run(ns, { e2e.udp_echo_bin(), "send", "127.0.0.1", "18081", "mine" })
      return got.code == 0 and got.stdout
    end, 30000, "18081/udp bound by another program"), "echo:mine\n")
    again:kill(9)
    again:wait()
  end)
end)
