-- Port forwards without a VM running: parsing and validation of
-- HOSTPORT:GUESTPORT[/udp], and the records (table `forwards`) through the
-- real CLI against a real state database. The forwarder itself is tested
-- in tests/cpp/port_forward_test.cpp and, end to end, e2e_forward_spec.lua.
local forwards = banger.forwards

-- Stopped VMs in a fresh home (rows only: nothing here boots); "name=ip"
-- gives one an address (a bridged VM), a bare name none.
local function home_with_vms(names)
  local home = t.tmpdir()
  local path = t.tmpdir() .. "/mk.lua"
  t.write(path, [[
for i, spec in ipairs({ ...}) do
  local name, ip = spec:match("^([^=]+)=?(.*)$")
  local row = banger.vms.insert(name, { image = "img", kernel = "k", driver = "qemu", vcpus = 1, memory_mib = 256,
    disk_mib = 1024, work_disk_mib = 64, nat = 0 }, { allocate_ip = function() return ip ~= "" and ip or nil end })
  banger.vms.set_state(row, "stopped")
end
]])
  local args = { "run", path }
  for _, n in ipairs(names) do
    args[#args + 1] = n
  end
  local r = t.banger(args, { home = home })
  t.eq(r.code, 0, r.stderr)
  return home
end

local function count_rows(home)
  local path = t.tmpdir() .. "/count.lua"
  t.write(path, 'print(banger.state.db():query("SELECT COUNT(*) AS n FROM forwards")[1].n)\n')
  local r = t.banger({ "run", path }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return tonumber(r.stdout)
end

describe("forwards.parse", function()
  it("reads HOSTPORT:GUESTPORT, TCP unless /udp", function()
    t.eq(forwards.parse("18080:8000"), { proto = "tcp", host_port = 18080, guest_port = 8000 })
    t.eq(forwards.parse("5353:53/udp"), { proto = "udp", host_port = 5353, guest_port = 53 })
    t.eq(forwards.parse("2222:22/tcp"), { proto = "tcp", host_port = 2222, guest_port = 22 })
    t.eq(forwards.parse("65535:1"), { proto = "tcp", host_port = 65535, guest_port = 1 })
  end)

  it("refuses what is not a port pair, saying why", function()
    local cases = {
      ["0:80"] = "host port '0'", ["70000:80"] = "host port '70000'", ["8080:0"] = "guest port '0'",
      ["8080:65536"] = "guest port '65536'", ["8080"] = "not HOSTPORT:GUESTPORT", ["a:b"] = "host port 'a'",
      ["8080:80/sctp"] = "tcp or udp", ["8080:80/"] = "tcp or udp", [" 8080:80"] = "host port ' 8080'",
      ["8080:80:90"] = "not HOSTPORT:GUESTPORT", ["-1:80"] = "host port '-1'", ["1e4:80"] = "host port '1e4'",
      [""] = "not HOSTPORT:GUESTPORT",
    }
    for spec, why in pairs(cases) do
      local f, msg = forwards.parse(spec)
      t.eq(f, nil, spec)
      t.contains(msg, why, spec)
    end
    local f, msg = forwards.parse(42)
    t.eq(f, nil)
    t.contains(msg, "got number")
  end)

  it("refuses host ports below 1024: the forwarder runs unprivileged", function()
    local f, msg = forwards.parse("80:8000")
    t.eq(f, nil)
    t.contains(msg, "host port 80 is below 1024")
    t.truthy(forwards.parse("1024:80"))
  end)

  it("refuses one host port given twice for a protocol, not for two protocols", function()
    local list, msg = forwards.parse_list({ "18080:80", "18080:81" })
    t.eq(list, nil)
    t.contains(msg, "host port 18080/tcp is given twice")
    list = forwards.parse_list({ "18080:80", "18080:80/udp" })
    t.eq(#list, 2)
    list, msg = forwards.parse_list({ "1:80", "18080:80", "nope" })
    t.eq(list, nil)
    t.contains(msg, "below 1024")
    t.contains(msg, "'nope'")
  end)

  it("parses --remove's HOSTPORT[/udp]", function()
    t.eq({ forwards.parse_host("18080") }, { "tcp", 18080 })
    t.eq({ forwards.parse_host("5353/udp") }, { "udp", 5353 })
    for _, bad in ipairs({ "0", "65536", "x", "18080:80", "1/icmp" }) do
      local proto, why = forwards.parse_host(bad)
      t.eq(proto, nil, bad)
      t.contains(why, "not HOSTPORT[/udp]", bad)
    end
  end)
end)

describe("vm create/run --publish", function()
  it("is checked with the other settings, before anything is made", function()
    local home = t.tmpdir()
    for _, cmd in ipairs({ "create", "run" }) do
      local r = t.banger({ "vm", cmd, "--publish", "18080:80", "--publish", "80:8000", "--publish", "18080:81" },
        { home = home })
      t.eq(r.code, 2, cmd .. ": " .. r.stderr)
      t.contains(r.stderr, "--publish: host port 80 is below 1024")
      t.contains(r.stderr, "host port 18080/tcp is given twice")
    end
    t.falsy(banger.fs.exists(home .. "/.local/state/banger/vms"), "nothing was made")
  end)
end)

describe("vm forward records", function()
  it("adds, lists, refuses a taken port naming its VM, removes, and goes with the VM", function()
    local home = home_with_vms({ "alpha=172.30.0.2", "beta=172.30.0.3" })
    local r = t.banger({ "vm", "forward", "alpha", "18080:8000", "18081:53/udp" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "127.0.0.1:18080/tcp -> guest port 8000 (active once the VM runs)")

    -- the same host port for another VM fails clearly and records nothing
    r = t.banger({ "vm", "forward", "beta", "18080:9000" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "host port 127.0.0.1:18080/tcp is already forwarded to VM 'alpha'")
    -- the same port number for UDP is another socket
    r = t.banger({ "vm", "forward", "beta", "18080:9000/udp" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    -- a wildcard address overlaps every address, and warns that it is exposed
    r = t.banger({ "vm", "forward", "beta", "--address", "0.0.0.0", "18081:1" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "reachable from the network")
    r = t.banger({ "vm", "forward", "alpha", "18081:2" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "already forwarded to VM 'beta' (on 0.0.0.0)")

    r = t.banger({ "vm", "forward", "alpha", "--list", "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(banger.json.decode(r.stdout), {
      { vm = "alpha", proto = "tcp", host_address = "127.0.0.1", host_port = 18080, guest_port = 8000, active = false },
      { vm = "alpha", proto = "udp", host_address = "127.0.0.1", host_port = 18081, guest_port = 53, active = false },
    })
    r = t.banger({ "vm", "forward", "alpha" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "127.0.0.1:18080")
    t.contains(r.stdout, "inactive")

    r = t.banger({ "vm", "forward", "alpha", "--remove", "18080" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    r = t.banger({ "vm", "forward", "alpha", "--remove", "18080" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "VM 'alpha' has no forward of host port 18080/tcp")
    -- freed: beta may have it now
    t.eq(t.banger({ "vm", "forward", "beta", "18080:9000" }, { home = home }).code, 0)
    t.eq(count_rows(home), 4)

    t.eq(t.banger({ "vm", "delete", "beta" }, { home = home }).code, 0)
    t.eq(count_rows(home), 1)
    t.eq(t.banger({ "vm", "delete", "alpha" }, { home = home }).code, 0)
    t.eq(count_rows(home), 0)
  end)

  it("refuses bad input as usage errors", function()
    local home = home_with_vms({ "gamma=172.30.0.2" })
    for _, args in ipairs({
      { "gamma", "80:80" }, { "gamma", "18080:80", "18080:81" }, { "gamma", "--address", "nope", "18080:80" },
      { "gamma", "--address", "127.0.0.1" }, { "gamma", "--list", "18080:80" }, { "gamma", "--remove", "x" },
    }) do
      local argv = { "vm", "forward" }
      table.move(args, 1, #args, 3, argv)
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 2, table.concat(args, " ") .. ": " .. r.stderr)
    end
    local r = t.banger({ "vm", "forward", "nosuch", "18080:80" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "no VM named 'nosuch'")
    t.eq(count_rows(home), 0)
    t.eq(t.banger({ "vm", "delete", "gamma" }, { home = home }).code, 0)
  end)

  it("the forwarder reports why it cannot start on its stdout, for the command waiting on it", function()
    local home = home_with_vms({ "delta=172.30.0.2" })
    local r = t.banger({ "vm", "forwarder", "--vm-dir", "/nonexistent", "nosuch" }, { home = home })
    t.eq(r.code, 1)
    t.eq(r.stdout, "error ENOENT no VM named 'nosuch' (see 'banger vm list')\n")
    r = t.banger({ "vm", "forwarder", "--vm-dir", home .. "/elsewhere", "delta" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stdout, "error EINVAL --vm-dir " .. home .. "/elsewhere is not VM 'delta''s directory")
    t.eq(t.banger({ "vm", "delete", "delta" }, { home = home }).code, 0)
  end)

  it("records forwards of a VM without network too (its forwarder goes through the agent)", function()
    local home = home_with_vms({ "offline" })
    local r = t.banger({ "vm", "forward", "offline", "18080:80" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(count_rows(home), 1)
    t.eq(t.banger({ "vm", "delete", "offline" }, { home = home }).code, 0)
  end)
end)
