-- vm ports on one real guest (kernel under QEMU TCG, the tiny busybox
-- image) with a tap on a bridge in a network namespace of its own: busybox
-- httpd on a wildcard port and on loopback, busybox udhcpd holding UDP port
-- 67, each found with its process and the address the host reaches it at;
-- the host fetches a page from the port it is told is reachable. A stopped
-- VM is refused.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

-- Servers under their applet names (so comm says httpd and udhcpd); each
-- daemonises, so the exec returns while they run on.
local SETUP = [[
set -e
busybox ln -s /bin/busybox /tmp/httpd
busybox ln -s /bin/busybox /tmp/udhcpd
mkdir -p /tmp/www
echo served-from-the-guest > /tmp/www/hello
printf 'interface eth0\nstart 10.254.0.10\nend 10.254.0.20\nlease_file /tmp/leases\npidfile /tmp/udhcpd.pid\n' > /tmp/udhcpd.conf
: > /tmp/leases
/tmp/httpd -p 8000 -h /tmp/www
/tmp/httpd -p 127.0.0.1:9000 -h /tmp/www
/tmp/udhcpd /tmp/udhcpd.conf
]]

local function find(list, proto, port)
  for _, l in ipairs(list) do
    if l.proto == proto and l.port == port then
      return l
    end
  end
end

describe("vm ports on a real guest", function()
  after_each(function()
    netns.cleanup()
  end)

  it("lists the guest's TCP listeners and bound UDP ports with processes and URLs", function()
    local ns = netns.new("ports")
    local home = e2e.home()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { mode = "on" } }\n')
    local run = netns.banger(ns, home)
    local c = run({ "vm", "create", "pt", "--image", "tiny", "--memory", "256MiB" })
    t.eq(c.code, 0, c.stderr)
    local vm = banger.json.decode(run({ "vm", "show", "pt", "--json" }).stdout)
    t.truthy(vm.ip, "the VM has an address on the bridge")

    local s = run({ "vm", "exec", "pt", "--", "sh", "-c", SETUP })
    t.eq(s.code, 0, s.stdout .. s.stderr)

    local out, ports
    e2e.wait_for(function()
      out = run({ "vm", "ports", "pt", "--json" })
      t.eq(out.code, 0, out.stderr)
      ports = banger.json.decode(out.stdout)
      return find(ports.listeners, "tcp", 8000) and find(ports.listeners, "tcp", 9000)
        and find(ports.listeners, "udp", 67)
    end, 60000, "httpd and udhcpd to bind in the guest")
    ports = json_doc.conforms("vm ports", out.stdout)
    t.eq({ ports.name, ports.ip, ports.truncated }, { "pt", vm.ip, false })

    local httpd_pids = run({ "vm", "exec", "pt", "--", "pidof", "httpd" }).stdout
    local dhcp_pid = tonumber(run({ "vm", "exec", "pt", "--", "cat", "/tmp/udhcpd.pid" }).stdout:match("%d+"))
    local wide, lo, dhcp = find(ports.listeners, "tcp", 8000), find(ports.listeners, "tcp", 9000),
      find(ports.listeners, "udp", 67)
    -- busybox httpd binds [::] when the kernel has IPv6, which takes IPv4 too
    t.eq({ wide.address, wide.family, wide.comm, wide.url, wide.reach },
      { "::", "ipv6", "httpd", "pt.vm:8000", "host" })
    t.eq({ lo.address, lo.family, lo.comm, lo.url, lo.reach },
      { "127.0.0.1", "ipv4", "httpd", banger.json.null, "guest-only" })
    t.eq({ dhcp.address, dhcp.family, dhcp.comm, dhcp.pid, dhcp.url, dhcp.reach },
      { "0.0.0.0", "ipv4", "udhcpd", dhcp_pid, "pt.vm:67", "host" })
    for _, l in ipairs({ wide, lo }) do
      t.truthy((" " .. httpd_pids:gsub("%s+$", "") .. " "):find(" " .. l.pid .. " ", 1, true),
        "pid " .. l.pid .. " is one of httpd's: " .. httpd_pids)
    end
    t.truthy(wide.pid ~= lo.pid, "two httpd processes")

    -- reachable means reachable: the host fetches from the port it was told of
    local got = netns.run(ns, { "curl", "-sf", "-m", "60", "http://" .. vm.ip .. ":" .. wide.port .. "/hello" })
    t.eq({ got.code, got.stdout }, { 0, "served-from-the-guest\n" }, got.stderr)

    local text = run({ "vm", "ports", "pt" })
    t.eq(text.code, 0, text.stderr)
    t.truthy(text.stdout:match("^PROTO%s+ADDRESS%s+PORT%s+PROCESS%s+URL\n"), text.stdout)
    t.truthy(text.stdout:find("\ntcp%s+::%s+8000%s+httpd%[" .. wide.pid .. "%]%s+pt%.vm:8000\n"), text.stdout)
    t.truthy(text.stdout:find("\ntcp%s+127%.0%.0%.1%s+9000%s+httpd%[" .. lo.pid .. "%]%s+guest%-only\n"), text.stdout)
    t.truthy(text.stdout:find("\nudp%s+0%.0%.0%.0%s+67%s+udhcpd%[" .. dhcp_pid .. "%]%s+pt%.vm:67\n"), text.stdout)

    t.eq(run({ "vm", "stop", "pt" }, 60000).code, 0)
    local down = run({ "vm", "ports", "pt" })
    t.eq(down.code ~= 0, true, down.stdout)
    t.eq(down.stdout, "")
    t.contains(down.stderr, "VM 'pt' is not running")

    t.eq(run({ "vm", "delete", "pt" }).code, 0)
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
