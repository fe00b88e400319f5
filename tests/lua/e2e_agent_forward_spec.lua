-- Port forwarding through the agent to a VM without a network: a real
-- kernel under QEMU TCG with the tiny busybox image and no NIC, a TCP server
-- inside it on 127.0.0.1, reached from the host by AgentDialer over the
-- VM's banger.forward serial port (tests/forward_probe.cpp drives it).
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local function probe(args)
  local argv = { os.getenv("BANGER_BUILD_DIR") .. "/tests/forward-probe" }
  for k, a in pairs(args) do
    if math.type(k) == "integer" then argv[k + 1] = a else argv[k] = a end
  end
  return argv
end

describe("port forwarding through the agent", function()
  after_each(function()
    netns.cleanup()
  end)

  it("reaches a guest's TCP servers without a network, beside vm exec", function()
    local home = e2e.home()
    local c = t.banger({ "vm", "create", "fw", "--image", "tiny", "--memory", "256MiB" },
      { home = home, timeout_ms = 180000 })
    t.eq(c.code, 0, c.stderr)
    local v = e2e.vms(home).fw
    local links = t.banger({ "vm", "exec", "fw", "--", "ip", "-o", "link" }, { home = home })
    t.eq(links.code, 0, links.stderr)
    t.falsy(links.stdout:match("eth0"), "the VM has no NIC: " .. links.stdout)
    local sock = home .. "/run/banger/vms/" .. v.id .. "/forward.sock"
    t.truthy(banger.fs.stat(sock), "the VM has a forwarding port at " .. sock)

    -- A web server on the guest's loopback only.
    local s = t.banger({ "vm", "exec", "fw", "--", "sh", "-c",
      "mkdir -p /tmp/www && echo hello-through-the-agent > /tmp/www/index.html && " ..
      "busybox httpd -p 127.0.0.1:8000 -h /tmp/www" }, { home = home })
    t.eq(s.code, 0, s.stderr)
    local r = banger.proc.run(probe({ sock, "8000", "GET /index.html HTTP/1.0\r\n\r\n" }))
    t.eq(r.code, 0, r.stderr)
    -- Both channels, at once on one session, got the page.
    local _, answers = r.stdout:gsub("== channel %d\nHTTP/1%.%d 200 OK", "")
    local _, pages = r.stdout:gsub("hello%-through%-the%-agent", "")
    t.eq({ answers, pages }, { 2, 2 }, r.stdout)
    t.contains(r.stdout, "== sessions 1")

    -- Nothing on 8001: the guest's own errno.
    local refused = banger.proc.run(probe({ sock, "8001", "x" }))
    t.eq(refused.code, 1)
    t.contains(refused.stderr, "ECONNREFUSED")

    -- A slow server holds a channel open while `vm exec` takes the agent's
    -- own port over (a new session there): the forwarding session is on
    -- the other port, so the answer still arrives.
    t.eq(t.banger({ "vm", "exec", "fw", "--", "sh", "-c",
      "printf '#!/bin/sh\\necho > /tmp/accepted\\nwhile [ ! -e /tmp/go ]; do sleep 0.2; done\\necho late answer\\n' > /tmp/slow.sh && " ..
      "busybox chmod +x /tmp/slow.sh && (busybox nc -l -p 8002 -e /tmp/slow.sh </dev/null >/dev/null 2>&1 &)" },
      { home = home }).code, 0)
    local waiting = t.spawn(probe({ sock, "8002", "", "1", stdout = "pipe", stderr = "pipe" }))
    local running = t.banger({ "vm", "exec", "fw", "--", "sh", "-c",
      "i=0; while [ $i -lt 600 ]; do [ -e /tmp/accepted ] && exit 0; sleep 0.1; i=$((i+1)); done; exit 1" },
      { home = home })
    t.eq(running.code, 0, "the slow server took the connection")
    t.eq(t.banger({ "vm", "exec", "fw", "--", "sh", "-c", "echo > /tmp/go" }, { home = home }).code, 0)
    local st = waiting:wait(60000)
    local out = waiting:read_all("stdout")
    t.eq(st.code, 0, waiting:read_all("stderr"))
    t.contains(out, "late answer")

    t.eq(t.banger({ "vm", "delete", "fw", "--force" }, { home = home, timeout_ms = 60000 }).code, 0)
  end)

  it("vm forward: host ports reach a VM without network, TCP and UDP", function()
    local ns = netns.new("afwd")
    local home = e2e.home()
    local banger_in = netns.banger(ns, home)
    local r = banger_in({ "vm", "create", "--image", "tiny", "--memory", "256MiB", "--publish", "18080:8000",
      "afw" }, 240000)
    t.eq(r.code, 0, r.stderr)
    local vm = banger.json.decode(banger_in({ "vm", "show", "afw", "--json" }).stdout)
    t.truthy(vm.ip == nil or vm.ip == banger.json.null, "the VM has no network: " .. tostring(vm.ip))
    e2e.forward_targets(netns, ns, home, "afw", "hello without a network", "127.0.0.1:8000")

    t.eq(e2e.forwarded_page(netns, ns, 18080), "hello without a network\n")

    r = banger_in({ "vm", "forward", "afw", "18081:8001/udp" })
    t.eq(r.code, 0, r.stderr)
    t.eq(e2e.forwarded_echo(netns, ns, 18081, "ping over the agent"), "echo:ping over the agent\n")
    -- vm exec beside the forwarder's session, and TCP still answers after it
    t.eq(banger_in({ "vm", "exec", "afw", "--", "true" }).code, 0)
    t.eq(netns.run(ns, { "curl", "-sf", "-m", "5", "http://127.0.0.1:18080/index.html" }).stdout,
      "hello without a network\n")

    t.eq(banger_in({ "vm", "delete", "afw", "--force" }, 60000).code, 0)
  end)
end)
