-- Guest network policy (banger.net) without touching the host: address
-- allocation against a real state DB, the kernel command line, resolvers.
local function run(home, code)
  local script = home .. "/probe.lua"
  t.write(script, code)
  local r = t.banger({ "run", script }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return r.stdout
end

local function home_with(config)
  local home = t.tmpdir()
  t.write(home .. "/.config/banger/config.lua", config)
  return home
end

local INSERT = [[
local function add(db, name)
  local ip = banger.net.allocate_ip(db)
  db:exec("INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, ip, state, vm_dir, created_at, updated_at) VALUES (?, ?, 'i', 'k', 'qemu', 1, 128, 512, 64, ?, 'created', '/x', 'now', 'now')", name, name, ip)
  return ip
end
]]

describe("guest addresses", function()
  it("skips the network, broadcast and bridge addresses, reuses freed ones, and says when none is left", function()
    local home = home_with('return { network = { mode = "off", bridge_ip = "10.1.2.1", cidr = 29 } }\n')
    local out = run(home, INSERT .. [[
local got = {}
banger.state.transaction(function(db)
  for i = 1, 5 do got[#got + 1] = add(db, "v" .. i) end
end)
print(table.concat(got, " "))
local ok, err = pcall(banger.state.transaction, function(db) add(db, "v6") end)
print(ok, err.code, err.message)
banger.state.db():exec("DELETE FROM vms WHERE name = 'v3'")
banger.state.transaction(function(db) print(add(db, "v7")) end)
]])
    local lines = {}
    for l in out:gmatch("[^\n]+") do
      lines[#lines + 1] = l
    end
    t.eq(lines[1], "10.1.2.2 10.1.2.3 10.1.2.4 10.1.2.5 10.1.2.6")
    t.contains(lines[2], "false\tENOSPC\tno free guest address left in 10.1.2.1/29")
    t.eq(lines[3], "10.1.2.4")
  end)

  it("a bridge in the middle of its subnet is still never handed out", function()
    -- (10.1.2.3/30 was used here once: the broadcast address of its /30, now refused)
    local home = home_with('return { network = { mode = "off", bridge_ip = "10.1.2.3", cidr = 29 } }\n')
    local out = run(home, INSERT .. [[
for _, name in ipairs({ "a", "b", "c", "d", "e" }) do
  banger.state.transaction(function(db) print(add(db, name)) end)
end
print(pcall(banger.state.transaction, function(db) add(db, "f") end))
]])
    t.contains(out, "10.1.2.1\n10.1.2.2\n10.1.2.4\n10.1.2.5\n10.1.2.6\nfalse")
  end)
end)

describe("kernel command line", function()
  it("carries ip= with the netmask, and banger.dns= for NAT'd guests only", function()
    local home = home_with('return { network = { mode = "off", bridge_ip = "10.1.0.1", cidr = 20, nameservers = { "9.9.9.9", "1.1.1.1" } } }\n')
    local out = run(home, [[
print(table.concat(banger.net.kernel_args({ ip = "10.1.0.7", name = "web", nat = 1 }), " "))
print(table.concat(banger.net.kernel_args({ ip = "10.1.0.8", name = "db", nat = 0 }), " "))
print(#banger.net.kernel_args({ name = "offline", nat = 1 }))
print(banger.net.tap_name({ id = "0123456789abcdef" }))
]])
    t.eq(out, "ip=10.1.0.7::10.1.0.1:255.255.240.0:web:eth0:off banger.dns=9.9.9.9,1.1.1.1\n"
      .. "ip=10.1.0.8::10.1.0.1:255.255.240.0:db:eth0:off\n0\nbgtap0123456789\n")
  end)

  it("rejects nameservers that are not IPv4 addresses", function()
    local home = home_with('return { network = { nameservers = { "dns.example" } } }\n')
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "network.nameservers[1]")
  end)
end)
