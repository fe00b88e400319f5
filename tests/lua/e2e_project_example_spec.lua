-- docs/scripting.md's "A project's banger.lua" example, exactly as the page
-- shows it, end to end: the default Debian image, a provisioning VM that
-- runs apt-get against Debian's archive through banger's NAT, its root disk
-- captured as the project's image, then VMs booted from that image.
--
-- The archive is only reachable through the host's real uplink, so this is
-- the one spec whose bridge, tap and NAT live in the host's network
-- namespace: a bridge name, subnet and DNS port of its own, and afterwards
-- a check that nothing of it is left (the bridge, which banger keeps for
-- later VMs, is removed here; ip_forward is put back as it was).
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local GiB = 1024 * 1024 * 1024

-- The first ```lua block after the section's heading.
local function documented_example()
  local page = t.read(t.source_dir() .. "/docs/scripting.md")
  local section = page:match("\n## A project's banger%.lua\n(.-)\n## ")
  t.truthy(section, "docs/scripting.md has the section")
  return (assert(section:match("```lua\n(.-)```"), "the section's example"))
end

local function sh(argv)
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
  return r.stdout
end

-- This run's own network: names and addresses no other run uses at once.
local function own_network()
  local pid = banger.sys.getpid()
  local n = {
    bridge = "br-fc-e" .. (pid % 100000),
    subnet = string.format("172.29.%d.", pid % 200 + 20),
    dns_port = 20000 + pid % 20000,
  }
  n.bridge_ip = n.subnet .. "1"
  return n
end

describe("docs/scripting.md: a project's banger.lua", function()
  local net, home, forward_before

  -- Removes what banger keeps after its VMs are gone: the bridge (kept for
  -- later VMs), the DNS responder (it exits once the state database is
  -- gone), ip_forward (turned on by NAT). Safe to run twice.
  local function cleanup()
    if home then
      pcall(t.banger, { "vm", "prune", "-f" }, { home = home, timeout_ms = 120000 })
      banger.fs.remove(home .. "/.local/state/banger/banger.db")
      local ok, lock = pcall(banger.fs.lock, home .. "/run/banger/dns.lock", { timeout_ms = 10000 })
      if ok then
        lock:close()
      end
    end
    if net then
      banger.proc.run({ "ip", "link", "del", net.bridge })
    end
    if forward_before then
      banger.proc.run({ "sysctl", "-qw", "net.ipv4.ip_forward=" .. forward_before })
    end
  end
  after_each(function()
    cleanup()
    net, home, forward_before = nil, nil, nil
  end)

  it("runs as written: provisioned once over NAT, then VMs with the package and a root filesystem of `disk`", function()
    local example = documented_example()
    local disk = assert(example:match('disk = "(%d+)GiB"'), "the example sets disk") * GiB
    net = own_network()
    forward_before = (t.read("/proc/sys/net/ipv4/ip_forward"):gsub("%s+$", ""))
    t.eq(banger.proc.run({ "ip", "link", "show", net.bridge }).code ~= 0, true, "the bridge is this run's own")

    local tar = banger.proc.run({ t.source_dir() .. "/tests/fixtures/debian-tar.sh", timeout_ms = 900000 })
    t.eq(tar.code, 0, tar.stderr)
    home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", string.format(
      'return { network = { mode = "on", bridge = %q, bridge_ip = %q, cidr = 24, dns = "127.0.0.1:%d" } }\n',
      net.bridge, net.bridge_ip, net.dns_port))
    t.eq(t.banger({ "kernel", "import", e2e.kernel_deb(), "--name", "debian-cloud" }, { home = home }).code, 0)
    local b = t.banger({ "image", "build", "debian", "--tar", (tar.stdout:gsub("%s+$", "")) },
      { home = home, timeout_ms = 300000 })
    t.eq(b.code, 0, b.stderr)

    local dir = home .. "/proj"
    banger.fs.mkdir(dir, 493, true)
    sh({ "git", "-C", dir, "init", "-q" })
    t.write(dir .. "/banger.lua", example)
    t.write(home .. "/.npmrc", "registry=https://registry.example.test/\n")

    -- provision is code: nothing is made until the project is trusted.
    local refused = t.banger({ "vm", "run", "--rm", "--", "true" }, { home = home, cwd = dir })
    t.eq(refused.code, 77, refused.stderr)
    t.eq(e2e.vms(home), {})
    t.eq(banger.proc.run({ "ip", "link", "show", net.bridge }).code ~= 0, true, "no bridge made for it")
    local trusted = t.banger({ "trust" }, { home = home, cwd = dir })
    t.eq(trusted.code, 0, trusted.stderr)

    local probe = { "sh", "-c", "jq --version && df -k / && cat ~/.npmrc" }
    local started = banger.sys.monotonic_ms()
    local first = t.banger({ "vm", "run", "--rm", "--", table.unpack(probe) },
      { home = home, cwd = dir, timeout_ms = 1800000 })
    local first_s = (banger.sys.monotonic_ms() - started) / 1000
    t.eq(first.code, 0, first.stderr .. first.stdout)
    t.contains(first.stderr, "provisioning for " .. dir .. "/banger.lua")
    t.contains(first.stdout, "Reading package lists", "apt-get ran in the provisioning VM")

    started = banger.sys.monotonic_ms()
    local later = t.banger({ "vm", "run", "--rm", "--", table.unpack(probe) },
      { home = home, cwd = dir, timeout_ms = 600000 })
    local later_s = (banger.sys.monotonic_ms() - started) / 1000
    t.eq(later.code, 0, later.stderr)
    t.not_contains(later.stderr, "provisioning for", "provisioned once")
    t.truthy(later.stdout:match("^jq%-1%.%d"), "jq is installed: " .. later.stdout)
    t.contains(later.stdout, "registry=https://registry.example.test/")
    local size = tonumber(later.stdout:match("\n%S+%s+(%d+)%s+%d+%s+%d+%s+%d+%%%s+/\n")) * 1024
    -- df: the disk's size minus ext4's metadata (inode tables, journal).
    t.truthy(size <= disk and size >= disk * 0.95, string.format("df / shows %d bytes for disk = %d", size, disk))
    io.stderr:write(string.format("# first vm run (provisioning included) %.0f s, later vm run %.0f s; "
      .. "df / %d KiB of a %d KiB disk\n", first_s, later_s, size // 1024, disk // 1024))

    -- Nothing of the VMs is left on the host...
    t.eq(e2e.vms(home), {})
    t.eq(sh({ "ip", "-o", "link", "show", "master", net.bridge }), "", "no tap on the bridge")
    local nft = banger.proc.run({ "nft", "list", "table", "ip", "banger" })
    t.not_contains(nft.stdout, net.subnet, "no NAT rule for this run's guests")
    t.not_contains(banger.proc.run({ "iptables", "-S" }).stdout, net.subnet, "no forward rule")

    -- ...and once what banger keeps for later VMs is removed, nothing at all.
    local dns_lock = home .. "/run/banger/dns.lock"
    cleanup()
    t.eq(banger.proc.run({ "ip", "link", "show", net.bridge }).code ~= 0, true, "the bridge is gone")
    t.eq((t.read("/proc/sys/net/ipv4/ip_forward"):gsub("%s+$", "")), forward_before)
    local free, lock = pcall(banger.fs.lock, dns_lock, { timeout_ms = 0 })
    t.truthy(free, "no DNS responder holds its lock")
    lock:close()
    t.eq(sh({ "ss", "-H", "-uln", "sport", "=", ":" .. net.dns_port }), "", "nothing listens on the DNS port")
  end)
end)
