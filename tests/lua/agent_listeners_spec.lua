-- The agent's `listeners` request through banger.native.agent, against the
-- real agent binary on a Unix socket. The agent and the servers it must
-- find run in a network namespace of their own (its /proc/net lists only
-- them): busybox httpd on TCP (a wildcard and a loopback port, under the
-- name httpd so their comm says so) and busybox udhcpd holding a bound UDP
-- port 67 on a veth. Inside a guest: e2e_vm_ports_spec.lua.
local agent = require("banger.native.agent")
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local function agent_bin()
  return assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/cli/banger-agent/banger-agent"
end

-- busybox under an applet's name, so the process's comm is that name
local function applet(dir, name)
  local path = dir .. "/" .. name
  local r = banger.proc.run({ "ln", "-s", "/bin/busybox", path })
  assert(r.code == 0, r.stderr)
  return path
end

local function in_ns(ns, argv)
  local full = { "ip", "netns", "exec", ns }
  for _, a in ipairs(argv) do
    full[#full + 1] = a
  end
  full.stdout, full.stderr, full.stdin = "null", "null", "null"
  -- ip netns exec execs the command: the child's pid is the server's
  return t.spawn(full)
end

local function find(list, proto, port)
  for _, l in ipairs(list) do
    if l.proto == proto and l.port == port then
      return l
    end
  end
end

describe("agent listeners from Lua", function()
  after_each(function()
    netns.cleanup()
  end)

  it("lists TCP listeners and bound UDP sockets with the pid and name of their process", function()
    local ns = netns.new("ports")
    netns.sh({ "ip", "-n", ns, "link", "add", "lp0", "type", "veth", "peer", "name", "lp1" })
    netns.sh({ "ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "lp0" })
    netns.sh({ "ip", "-n", ns, "link", "set", "lp0", "up" })
    netns.sh({ "ip", "-n", ns, "link", "set", "lp1", "up" })
    local dir = t.tmpdir()
    t.write(dir .. "/udhcpd.conf", table.concat({ "interface lp0", "start 10.77.0.10", "end 10.77.0.20",
      "lease_file " .. dir .. "/leases", "pidfile " .. dir .. "/udhcpd.pid", "" }, "\n"))
    t.write(dir .. "/leases", "")
    local sock = dir .. "/agent.sock"
    local ag = in_ns(ns, { agent_bin(), "--unix", sock })
    local httpd = applet(dir, "httpd")
    local wide = in_ns(ns, { httpd, "-f", "-p", "8000", "-h", dir })
    local lo = in_ns(ns, { httpd, "-f", "-p", "127.0.0.1:9000", "-h", dir })
    local dhcp = in_ns(ns, { applet(dir, "udhcpd"), "-f", dir .. "/udhcpd.conf" })

    local c = assert(agent.connect({ kind = "unix", path = sock, wait = true, timeout_ms = 10000 }))
    local caps = table.concat(c:hello().capabilities, " ")
    t.truthy((" " .. caps .. " "):find(" listeners ", 1, true), "capabilities: " .. caps)
    local list, truncated
    t.wait_for(function()
      list, truncated = c:listeners()
      return find(list, "tcp", 8000) and find(list, "tcp", 9000) and find(list, "udp", 67)
    end, 30000, "the three servers to bind")
    t.eq(truncated, false)
    -- busybox httpd takes IPv6 when the kernel has it: [::]:8000 accepts IPv4 too
    local w = find(list, "tcp", 8000)
    t.eq({ w.address, w.family, w.pid, w.comm }, { "::", "ipv6", wide:pid(), "httpd" })
    local l = find(list, "tcp", 9000)
    t.eq({ l.address, l.family, l.pid, l.comm }, { "127.0.0.1", "ipv4", lo:pid(), "httpd" })
    local u = find(list, "udp", 67)
    t.eq({ u.address, u.family, u.pid, u.comm }, { "0.0.0.0", "ipv4", dhcp:pid(), "udhcpd" })
    for _, x in ipairs({ w, l, u }) do
      t.truthy(math.type(x.inode) == "integer" and x.inode > 0, "inode " .. tostring(x.inode))
      local held = banger.proc.run({ "find", "/proc/" .. x.pid .. "/fd", "-lname", "socket:\\[" .. x.inode .. "\\]" })
      t.truthy(held.stdout ~= "", "process " .. x.pid .. " holds socket " .. x.inode)
    end
    -- nothing else listens in the namespace: the agent itself talks over a Unix socket
    t.eq(#list, 3, banger.json.encode(list))

    c:close()
    t.raises(function() c:listeners() end, "attempt to use a closed banger.agent.client")
    for _, p in ipairs({ wide, lo, dhcp, ag }) do
      p:kill(9)
      p:wait(5000)
    end
  end)
end)
