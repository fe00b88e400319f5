-- banger.config: every rule rejects bad values with a message naming the key.
local config = require("banger.config")

local function rejects(tbl, key, reason)
  local e = t.raises(function()
    config.validate(tbl, "config.lua")
  end, "EINVAL")
  t.contains(e.message, "config.lua: " .. key .. ": ")
  if reason then
    t.contains(e.message, reason)
  end
end

describe("config defaults", function()
  it("fills every section when the file is empty", function()
    local c = config.validate({}, "x")
    t.eq(c.vm.vcpus, 2)
    t.eq(c.vm.nat, false)
    t.eq(c.network.bridge, "br-fc")
    t.eq(c.network.cidr, 24)
    t.eq(c.driver.name, "auto")
    t.eq(c.file_sync, {})
    t.eq(c.image.packages, {})
  end)

  it("keeps valid values", function()
    local c = config.validate({
      vm = { vcpus = 4, memory = "2GiB", nat = true },
      network = { bridge = "br-fc-lab", bridge_ip = "10.20.0.1", cidr = 16 },
      file_sync = { { host = "~/.aws", guest = "~/.aws" }, { host = "/etc/x", guest = "/root/x", mode = "0644" } },
    }, "x")
    t.eq(c.vm.vcpus, 4)
    t.eq(c.network.bridge, "br-fc-lab")
    t.eq(c.file_sync[2].mode, "0644")
  end)
end)

describe("config rules", function()
  it("unknown keys (typos)", function()
    rejects({ vm = { cpus = 2 } }, "vm.cpus", "unknown key")
    rejects({ nonsense = true }, "nonsense", "unknown key")
  end)
  it("types", function()
    rejects({ vm = { vcpus = "two" } }, "vm.vcpus", "expected an integer")
    rejects({ vm = { vcpus = 1.5 } }, "vm.vcpus", "expected an integer")
    rejects({ vm = { nat = "yes" } }, "vm.nat", "expected true or false")
    rejects({ vm = "big" }, "vm", "expected a table")
    rejects({ file_sync = { a = 1 } }, "file_sync", "expected a list")
  end)
  it("ranges", function()
    rejects({ vm = { vcpus = 0 } }, "vm.vcpus", "between 1 and 32")
    rejects({ vm = { vcpus = 64 } }, "vm.vcpus", "between 1 and 32")
    rejects({ vm = { memory = "lots" } }, "vm.memory", "not a size")
    rejects({ vm = { memory = "16MiB" } }, "vm.memory", "at least 128MiB")
  end)
  it("sizes: overflow and beyond 16 TiB refused with a reason, integers are bytes, no unit is no guess", function()
    rejects({ vm = { memory = "99999999999GiB" } }, "vm.memory", "too large (at most 16TiB)")
    rejects({ vm = { disk = "17TiB" } }, "vm.disk", "too large")
    rejects({ vm = { work_disk = string.rep("9", 400) .. "B" } }, "vm.work_disk", "too large")
    rejects({ vm = { memory = 2048 } }, "vm.memory", 'a bare integer is bytes: write "2048MiB"')
    rejects({ vm = { memory = "2048" } }, "vm.memory", "has no unit")
    rejects({ vm = { memory = math.maxinteger } }, "vm.memory", "too large")
    t.eq(config.validate({ vm = { memory = 1024 * 1024 * 1024 } }, "x").vm.memory, 1024 * 1024 * 1024)
  end)
  it("bridge name must be br-fc or br-fc-*", function()
    rejects({ network = { bridge = "eth0" } }, "network.bridge", "must be 'br-fc'")
    rejects({ network = { bridge = "docker0" } }, "network.bridge", "must be 'br-fc'")
    rejects({ network = { bridge = "br-fcx" } }, "network.bridge")
    rejects({ network = { bridge = "br-fc-very-long-name" } }, "network.bridge", "1 to 15 characters")
  end)
  it("bridge IP must be IPv4", function()
    rejects({ network = { bridge_ip = "300.1.1.1" } }, "network.bridge_ip", "IPv4")
    rejects({ network = { bridge_ip = "fe80::1" } }, "network.bridge_ip", "IPv4")
  end)
  it("bridge IP must be an address the bridge can have in its network", function()
    rejects({ network = { bridge_ip = "0.0.0.0" } }, "network.bridge_ip", "0.0.0.0/8")
    rejects({ network = { bridge_ip = "127.0.0.1" } }, "network.bridge_ip", "loopback")
    rejects({ network = { bridge_ip = "255.255.255.255" } }, "network.bridge_ip", "broadcast")
    rejects({ network = { bridge_ip = "224.0.0.251" } }, "network.bridge_ip", "multicast")
    rejects({ network = { bridge_ip = "240.1.2.3" } }, "network.bridge_ip", "reserved")
    rejects({ network = { bridge_ip = "172.30.0.0" } }, "network.bridge_ip", "network's own address")
    rejects({ network = { bridge_ip = "172.30.0.255" } }, "network.bridge_ip", "broadcast address")
    rejects({ network = { bridge_ip = "10.20.255.255", cidr = 16 } }, "network.bridge_ip", "broadcast address")
    -- the same address is a host address of a wider network
    t.eq(config.validate({ network = { bridge_ip = "172.30.0.255", cidr = 16 } }, "x").network.bridge_ip, "172.30.0.255")
    t.eq(config.validate({ network = { bridge_ip = "10.0.0.0", cidr = 31 } }, "x").network.cidr, 31)
  end)
  it("CIDR prefix must be 8..31", function()
    rejects({ network = { cidr = 4 } }, "network.cidr", "between 8 and 32")
    rejects({ network = { cidr = 64 } }, "network.cidr", "between 8 and 32")
    rejects({ network = { cidr = 32 } }, "network.cidr", "no address for guests")
  end)
  it("dns listen address", function()
    rejects({ network = { dns = "localhost" } }, "network.dns", "IPv4:port")
    rejects({ network = { dns = "127.0.0.1:99999" } }, "network.dns", "port")
  end)
  it("driver choices", function()
    rejects({ driver = { name = "xen" } }, "driver.name", "must be one of auto, qemu, firecracker")
  end)
  it("file_sync guest path outside ~/ or /root", function()
    rejects({ file_sync = { { host = "~/a", guest = "/etc/passwd" } } }, "file_sync[1].guest", "under '~/' or '/root/'")
    rejects({ file_sync = { { host = "~/a", guest = "~/ok" }, { host = "~/b", guest = "/home/x" } } },
      "file_sync[2].guest", "under '~/' or '/root/'")
  end)
  it("file_sync '..' traversal", function()
    rejects({ file_sync = { { host = "~/a", guest = "~/../etc/shadow" } } }, "file_sync[1].guest", "'..'")
    rejects({ file_sync = { { host = "/root/../etc/shadow", guest = "~/x" } } }, "file_sync[1].host", "'..'")
  end)
  it("file_sync ~user/ paths", function()
    rejects({ file_sync = { { host = "~bob/.aws", guest = "~/.aws" } } }, "file_sync[1].host", "'~user/'")
    rejects({ file_sync = { { host = "~/.aws", guest = "~bob/.aws" } } }, "file_sync[1].guest", "'~user/'")
  end)
  it("file_sync relative or empty paths and missing keys", function()
    rejects({ file_sync = { { host = "relative/x", guest = "~/x" } } }, "file_sync[1].host", "absolute")
    rejects({ file_sync = { { host = "", guest = "~/x" } } }, "file_sync[1].host", "empty")
    rejects({ file_sync = { { guest = "~/x" } } }, "file_sync[1].host", "is required")
  end)
  it("file_sync bad mode string", function()
    rejects({ file_sync = { { host = "~/a", guest = "~/a", mode = "rwx" } } }, "file_sync[1].mode", "octal")
    rejects({ file_sync = { { host = "~/a", guest = "~/a", mode = "0999" } } }, "file_sync[1].mode", "octal")
    rejects({ file_sync = { { host = "~/a", guest = "~/a", mode = 644 } } }, "file_sync[1].mode", "expected a string")
  end)
end)

describe("config files", function()
  it("refuses an unusable bridge address through the CLI, with the reason", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { bridge_ip = "127.0.0.1" } }\n')
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "config.lua:1: network.bridge_ip: invalid IPv4 address '127.0.0.1': is a loopback address")
    t.write(home .. "/.config/banger/config.lua", 'return {\n  network = {\n    bridge_ip = "10.9.0.0",\n    cidr = 16,\n  },\n}\n')
    r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "config.lua:3: network.bridge_ip: invalid bridge address '10.9.0.0/16': is the network's own address")
  end)

  it("loads and validates the user's config.lua through the CLI", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'return { network = { bridge = "eth0" } }\n')
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "config.lua:1: network.bridge: invalid bridge name 'eth0'")
    t.not_contains(r.stderr, "traceback")
  end)

  it("reports a syntax error with file and line", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", "return {\n  vm = { vcpus = 2 \n")
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "config.lua:3:")
  end)

  it("treats the file as data: no access to os or io", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", 'os.execute("true")\nreturn {}\n')
    local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, "attempt to index a nil value (global 'os')")
  end)

  it("evaluates it in a sandbox: no string methods, bounded time and memory, no functions", function()
    local home = t.tmpdir()
    local path = home .. "/.config/banger/config.lua"
    local function rejects(text, expect)
      t.write(path, text)
      local r = t.banger({ "run", t.source_dir() .. "/tests/lua/fixtures/show_config.lua" }, { home = home })
      t.eq(r.code, 78, text)
      t.contains(r.stderr, expect)
    end
    rejects('return { vm = { image = ("x"):rep(2^40) } }\n', "attempt to index a string value")
    rejects("while true do end\n", "instruction limit exceeded")
    rejects("local t = {}\nfor i = 1, 1e9 do t[i] = i end\n", "")
    rejects("return {\n  log = { level = function() end },\n}\n", "config.lua:2: log.level: a function is not a setting")
    rejects("local t = {}\nt.vm = t\nreturn t\n", "a table that contains itself")
    rejects('return {\n  vm = {\n    vcpus = 64,\n  },\n}\n', "config.lua:3: vm.vcpus: must be between 1 and 32")
  end)
end)

describe("config did-you-mean", function()
  it("suggests a close spelling among the section's keys, else the same key in another section", function()
    t.eq(config.suggest("vm", "cpus"), "vm.vcpus")
    t.eq(config.suggest("vm", "memroy"), "vm.memory")
    t.eq(config.suggest("network", "brige"), "network.bridge")
    t.eq(config.suggest("", "netwrok"), "network")
    t.eq(config.suggest("", "vcpus"), "vm.vcpus")
    t.eq(config.suggest("vm", "bridge"), "network.bridge")
    t.eq(config.suggest("vm", "colour"), nil)
    t.eq(config.suggest("", "nonsense"), nil)
  end)

  it("an unknown key's error carries the suggestion as its hint", function()
    local e = t.raises(function() config.validate({ vm = { cpus = 2 } }, "config.lua") end, "EINVAL")
    t.eq(e.message, "config.lua: vm.cpus: unknown key")
    t.eq(e.hint, "did you mean vm.vcpus?")
    t.eq(e.exit, 78)
    e = t.raises(function()
      config.validate({ file_sync = { { host = "~/a", guest = "~/a", mdoe = "0600" } } }, "config.lua")
    end, "EINVAL")
    t.eq(e.message, "config.lua: file_sync[1].mdoe: unknown key")
    t.eq(e.hint, "did you mean file_sync[1].mode?")
    e = t.raises(function() config.validate({ nonsense = 1 }, "config.lua") end, "EINVAL")
    t.eq(e.hint, nil)
  end)
end)

-- Commands that run with a broken config: the ways to find and fix it.
local runs_anyway = { version = true, doctor = true, completion = true, status = true }
-- Commands not run by the every-command case below: had the gate a hole,
-- they would change the host (root's systemd units) or block (a server).
-- The gate is one code path (banger.main.run_recipe) that every other
-- command goes through.
local not_run = { ["system install"] = true, ["system uninstall"] = true, ["system restart"] = true,
  ["dns serve"] = true }

describe("config at start-up", function()
  local bad = "return {\n  vm = { cpus = 4 },\n}\n"

  local function broken_home()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", bad)
    return home, home .. "/.config/banger/config.lua"
  end

  it("an unknown key fails vm list, image list and vm run --dry-run with exit 78 and one line", function()
    local home, path = broken_home()
    local line = "banger: " .. path .. ":2: vm.cpus: unknown key (did you mean vm.vcpus?)\n"
    for _, argv in ipairs({ { "vm", "list" }, { "vm", "list", "--json" }, { "vm", "ls" }, { "image", "list" },
      { "vm", "run", "--dry-run" }, { "kernel", "list", "--bogus" }, { "run", t.source_dir() .. "/examples/hello.lua" } }) do
      local r = t.banger(argv, { home = home })
      local shown = table.concat(argv, " ")
      t.eq(r.code, 78, shown .. ": " .. r.stderr)
      t.eq(r.stdout, "", shown)
      t.eq(r.stderr, line, shown)
    end
    t.falsy(banger.fs.exists(home .. "/.local/state/banger/banger.db"), "nothing ran: no state was made")
  end)

  it("a bad value fails the same way, naming the key and the rule", function()
    local home = t.tmpdir()
    local path = home .. "/.config/banger/config.lua"
    t.write(path, 'return { network = { mode = "maybe" } }\n')
    local r = t.banger({ "vm", "list" }, { home = home })
    t.eq(r.code, 78)
    t.eq(r.stderr, "banger: " .. path .. ":1: network.mode: must be one of auto, on, off, got 'maybe'\n")
    t.write(path, "return { vm = {\n")
    r = t.banger({ "snapshot", "list" }, { home = home })
    t.eq(r.code, 78)
    t.contains(r.stderr, path .. ":2:")
    t.eq(select(2, r.stderr:gsub("\n", "")), 1, "one line")
  end)

  it("every command stops at a broken config, except version, doctor and status; every --help still works", function()
    local home = broken_home()
    local help = t.banger({ "help" }, { home = home })
    t.eq(help.code, 0, help.stderr)
    t.not_contains(help.stdout, "cannot load")
    local n = 0
    for line in help.stdout:gmatch("[^\n]+") do
      local cmd = line:match("^  ([%w][%w _-]-[%w])%s%s+")
      if cmd and cmd ~= "repl" then
        local argv = {}
        for w in cmd:gmatch("%S+") do
          argv[#argv + 1] = w
        end
        if not runs_anyway[cmd] and not not_run[cmd] then
          local r = t.banger(argv, { home = home, timeout_ms = 30000 })
          t.eq(r.code, 78, cmd .. ": " .. r.stderr)
          t.contains(r.stderr, "vm.cpus: unknown key", cmd)
          n = n + 1
        end
        argv[#argv + 1] = "--help"
        local h = t.banger(argv, { home = home })
        t.eq(h.code, 0, cmd .. " --help: " .. h.stderr)
        t.contains(h.stdout, "Usage: banger " .. cmd, cmd)
      end
    end
    t.truthy(n >= 30, "commands tried: " .. n)
  end)

  it("help, --help, --version, version, completion, doctor and status still run", function()
    local home = broken_home()
    for _, argv in ipairs({ {}, { "help" }, { "--help" }, { "help", "vm", "list" }, { "vm", "list", "--help" },
      { "vm", "--help" }, { "--version" }, { "version", "--json" }, { "completion", "bash" },
      { "__complete", "--", "vm", "st" } }) do
      local r = t.banger(argv, { home = home })
      t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
      t.eq(r.stderr, "", table.concat(argv, " "))
    end
    local d = t.banger({ "doctor" }, { home = home })
    t.eq(d.code, 1)
    t.contains(d.stdout, "vm.cpus: unknown key")
    -- status shows the error on the parts that read the config, the rest as usual
    local s = t.banger({ "status" }, { home = home })
    t.eq(s.code, 0, s.stderr)
    t.contains(s.stdout, "vm.cpus: unknown key")
    t.contains(s.stdout, "banger ")
  end)

  it("log.level sets what reaches the log file", function()
    local home = t.tmpdir()
    t.write(home .. "/log.lua", 'banger.log.debug("spec", "a debug line")\nbanger.log.warn("spec", "a warning")\n')
    local log = home .. "/.local/state/banger/banger.log"
    local function logged(level)
      t.write(home .. "/.config/banger/config.lua", string.format('return { log = { level = %q } }\n', level))
      banger.fs.mkdir(home .. "/.local/state/banger", 448, true)
      t.write(log, "")
      local r = t.banger({ "run", home .. "/log.lua" }, { home = home })
      t.eq(r.code, 0, r.stderr)
      return t.read(log)
    end
    local debug = logged("debug")
    t.contains(debug, "a debug line")
    t.contains(debug, "a warning")
    local info = logged("info")
    t.not_contains(info, "a debug line")
    t.contains(info, "a warning")
    t.eq(logged("error"), "")
  end)

  it("a recipe of the user's is gated too, unless it says needs_config = false", function()
    local home = broken_home()
    t.write(home .. "/.config/banger/recipes/mine/strict.lua", 'return { summary = "s", run = function() print("ran") end }\n')
    t.write(home .. "/.config/banger/recipes/mine/lenient.lua",
      'return { summary = "l", needs_config = false, run = function() print("ran") end }\n')
    local strict = t.banger({ "mine", "strict" }, { home = home })
    t.eq(strict.code, 78)
    t.eq(strict.stdout, "")
    local lenient = t.banger({ "mine", "lenient" }, { home = home })
    t.eq(lenient.code, 0, lenient.stderr)
    t.eq(lenient.stdout, "ran\n")
  end)
end)

describe("docs/config.md", function()
  it("documents every key of the schema", function()
    local doc = t.read(t.source_dir() .. "/docs/config.md")
    for section, spec in pairs(config.schema) do
      if spec.kind == "table" then
        for name in pairs(spec.fields) do
          t.contains(doc, "`" .. section .. "." .. name .. "`")
        end
      else
        for name in pairs(spec.of.fields) do
          t.contains(doc, "`" .. section .. "[i]." .. name .. "`")
        end
      end
    end
  end)
end)
