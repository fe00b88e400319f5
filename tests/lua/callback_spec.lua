-- The one bridge from natives back into Lua (engine/lua/callback.hpp),
-- through the real natives that call back: ext4's layer progress, http's
-- download progress (inside libcurl's callback), the DNS responder's lookup
-- and the agent's streamed output. A callback's error reaches the caller
-- as it was raised; Ctrl-C during a long callback exits 130.
local ext4 = require("banger.native.ext4")
local http = require("banger.native.http")

local function layer(dir)
  local files = dir .. "/files"
  for i = 1, 20 do
    t.write(files .. "/f" .. i, string.rep("x", 1000))
  end
  local r = banger.proc.run({ "tar", "-C", files, "-cf", dir .. "/layer.tar", "." })
  t.eq(r.code, 0, r.stderr)
  return dir .. "/layer.tar"
end

local function image(dir)
  return assert(ext4.create(dir .. "/img", "16MiB"))
end

local function big_file(dir)
  local path = dir .. "/big.bin"
  t.write(path, string.rep("0123456789abcdef", 512 * 1024))  -- 8 MiB
  return path
end

describe("callback errors", function()
  it("a structured error from ext4's on_progress reaches the caller as raised, code and all", function()
    local dir = t.tmpdir()
    local fs <close> = image(dir)
    local raised = banger.errors.new("EMINE", "stop at the first entry", { hint = "mine" })
    local ok, e = pcall(fs.apply_layer, fs, layer(dir), { on_progress = function() error(raised) end })
    t.falsy(ok)
    t.truthy(rawequal(e, raised), "the very table raised: " .. tostring(e))
    t.eq({ e.code, e.hint }, { "EMINE", "mine" })
  end)

  it("a bug in a callback keeps its own message and line, not 'canceled'", function()
    local dir = t.tmpdir()
    local fs <close> = image(dir)
    local ok, e = pcall(fs.apply_layer, fs, layer(dir), { on_progress = function()
      local missing
      return missing.field
    end })
    t.falsy(ok)
    t.eq(type(e), "string")
    t.contains(e, "callback_spec.lua:")
    t.contains(e, "attempt to index a nil value (local 'missing')")
    t.not_contains(e:lower(), "cancel")
  end)

  it("through the banger.* wrapper too: the callback's error, not a native failure", function()
    local dir = t.tmpdir()
    local fs <close> = banger.ext4.create(dir .. "/img", "16MiB")
    local e = t.raises(function()
      fs:apply_layer(layer(dir), { on_progress = function() banger.errors.raise("EHOOK", "hook says no") end })
    end, "EHOOK")
    t.eq(e.message, "hook says no")
  end)

  it("http.download: an error raised inside libcurl's progress callback stops the transfer and is re-raised",
    function()
      local dir = t.tmpdir()
      local src = big_file(dir)
      local raised = banger.errors.new("EMINE", "enough")
      local calls = 0
      local ok, e = pcall(http.download, { url = "file://" .. src, path = dir .. "/out", on_progress = function()
        calls = calls + 1
        error(raised)
      end })
      t.falsy(ok)
      t.truthy(rawequal(e, raised), tostring(e))
      t.eq(calls, 1, "the transfer stopped at the first error")
      t.falsy(banger.fs.exists(dir .. "/out"), "no partial download left")
      -- and a well-behaved callback sees the whole transfer
      local last = 0
      local r = assert(http.download({ url = "file://" .. src, path = dir .. "/out", on_progress = function(done)
        last = done
      end }))
      t.eq(r.bytes, 8 * 1024 * 1024)
      t.eq(last, 8 * 1024 * 1024)
    end)

  it("dns: a lookup that raises is answered SERVFAIL and its error reaches serve_once's caller", function()
    local server <close> = assert(require("banger.native.dns").listen("127.0.0.1", 0))
    local dig = t.spawn({ "dig", "@127.0.0.1", "-p", tostring(server:port()), "+norec", "+time=2", "+tries=3",
      "web.vm", "A", stdout = "pipe" })
    local raised = banger.errors.new("EDB", "the state DB is gone")
    local ok, e = pcall(server.serve_once, server, 10000, function(name)
      t.eq(name, "web")
      error(raised)
    end)
    t.falsy(ok)
    t.truthy(rawequal(e, raised), tostring(e))
    t.eq(dig:wait(10000).code, 0)
    t.contains(dig:read_all(), "status: SERVFAIL")
  end)

  it("agent exec: an error in on_stdout reaches the caller and the client stays usable", function()
    local dir = t.tmpdir()
    local sock = dir .. "/agent.sock"
    local bin = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/cli/banger-agent/banger-agent"
    local child = t.spawn({ bin, "--unix", sock })
    local agent = require("banger.native.agent")
    local c <close> = assert(agent.connect({ kind = "unix", path = sock, wait = true, timeout_ms = 10000 }))
    local ok, e = pcall(c.exec, c, { "echo", "hello", on_stdout = function(chunk)
      banger.errors.raise("EOUT", "got " .. chunk:gsub("%s+$", ""))
    end })
    t.falsy(ok)
    t.eq({ e.code, e.message }, { "EOUT", "got hello" })
    t.eq(c:ping(), true)
    local r = assert(c:exec({ "echo", "again" }))
    t.eq(r.stdout, "again\n")
    child:kill(9)
    child:wait(5000)
  end)
end)

describe("stage hooks", function()
  -- vmm.launch against the fake firecracker (tests/fake-firecracker), as
  -- firecracker_snapshot_spec.lua does.
  local fake = assert(os.getenv("BANGER_BUILD_DIR")) .. "/tests/fake-firecracker/fake-firecracker"
  local function spec(root)
    local dir, run = root .. "/vm", root .. "/run"
    banger.fs.mkdir(dir, 448)
    assert(banger.fs.mkdir_private(run))
    t.write(root .. "/vmlinux", "not a kernel")
    t.write(dir .. "/root.img", string.rep("r", 8192), 384)
    return {
      id = "5a1c00aa", name = "hooked", vcpus = 1, memory_mib = 128, kernel = root .. "/vmlinux",
      cmdline = "console=ttyS0", binary = fake, vm_dir = dir, runtime_dir = run,
      disks = { { id = "rootfs", path = dir .. "/root.img", root = true } },
      agent = { kind = "vsock_uds", cid = 3, port = 52 },
    }
  end

  local function no_process_in(dir)
    local r = banger.proc.run({ "pgrep", "-f", "--", dir })
    t.eq(r.stdout, "", "a process still runs from " .. dir)
  end

  it("an error in on_stage stops the launch, the half-started VM is killed, the error reaches the caller", function()
    local root = t.tmpdir()
    local s = spec(root)
    local seen = {}
    local raised = banger.errors.new("ESTAGE", "stop at configure")
    local ok, e = pcall(require("banger.native.vmm").launch, "firecracker", s, function(name)
      seen[#seen + 1] = name
      if name == "configure" then
        error(raised)
      end
    end)
    t.falsy(ok)
    t.truthy(rawequal(e, raised), tostring(e))
    t.eq(seen, { "launch", "configure" })
    no_process_in(s.runtime_dir)
  end)

  it("a bug in on_stage is reported as that bug, not as ECANCELED", function()
    local root = t.tmpdir()
    local s = spec(root)
    local ok, e = pcall(require("banger.native.vmm").launch, "firecracker", s, function(name)
      if name == "configure" then
        return #name.missing
      end
    end)
    t.falsy(ok)
    t.eq(type(e), "string")
    t.contains(e, "attempt to get length of a nil value (field 'missing')")
    no_process_in(s.runtime_dir)
  end)
end)

-- A local registry (Debian's docker-registry) holding the fixture image.
local function registry()
  local fixtures = t.source_dir() .. "/tests/fixtures"
  local dir = t.tmpdir()
  local r = banger.proc.run({ fixtures .. "/registry.sh", "start", dir, timeout_ms = 60000 })
  t.eq(r.code, 0, r.stderr)
  local addr = r.stdout:gsub("%s+$", "")
  local img = banger.proc.run({ fixtures .. "/make-oci-image.sh", dir .. "/work", addr, "banger/test", "8",
    timeout_ms = 120000 })
  t.eq(img.code, 0, img.stderr)
  return addr .. "/banger/test:v1", function()
    banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
  end
end

describe("callback errors in a pull", function()
  it("a structured error from oci.fetch's on_progress reaches the caller as raised", function()
    local ref, stop = registry()
    local ok, e = pcall(function()
      local cache = t.tmpdir()
      local resolved = banger.oci.resolve(ref, { cache = cache })
      local raised = banger.errors.new("EMINE", "no more progress")
      local fetched, err = pcall(banger.oci.fetch, resolved, { cache = cache, on_progress = function()
        error(raised)
      end })
      t.falsy(fetched)
      t.truthy(rawequal(err, raised), tostring(err))
    end)
    stop()
    assert(ok, e)
  end)
end)

describe("Ctrl-C during a callback", function()
  -- A real banger process spinning inside a native's callback: SIGINT ends
  -- it with 130 and the interrupt message, its <close> handlers run.
  local function interrupt_in_callback(body)
    local home = t.tmpdir()
    local marker = home .. "/in-callback"
    layer(home)
    big_file(home)
    local script = home .. "/spin.lua"
    t.write(script, [[
local home, marker = arg[1], arg[2]
local function arrived()
  local f = assert(io.open(marker, "w"))
  f:close()
end
local closed <close> = setmetatable({}, { __close = function()
  io.stdout:write("cleanup ran\n")
  io.stdout:flush()
end })
]] .. body)
    local err = home .. "/err"
    local child = t.spawn({ t.bin(), "run", script, home, marker, env = t.env(home), cwd = home, stdout = "pipe",
      stderr = { file = err, append = false } })
    local deadline = banger.sys.monotonic_ms() + 30000
    while not banger.fs.exists(marker) do
      t.truthy(banger.sys.monotonic_ms() < deadline, "the callback never ran")
      banger.sys.sleep_ms(20)
    end
    local start = banger.sys.monotonic_ms()
    child:kill(2)
    local st = child:wait(10000)
    t.eq({ st.exited, st.code }, { true, 130 }, t.read(err))
    t.truthy(banger.sys.monotonic_ms() - start < 5000)
    t.contains(t.read(err), "banger: interrupted")
    t.contains(child:read_all(), "cleanup ran\n")
  end

  it("a progress callback stuck in a loop (ext4 layer) exits 130", function()
    interrupt_in_callback([[
local fs <close> = banger.ext4.create(home .. "/img", "16MiB")
fs:apply_layer(home .. "/layer.tar", { on_progress = function()
  arrived()
  while true do end
end })
]])
  end)

  it("a download's progress callback stuck in a loop (inside libcurl) exits 130", function()
    interrupt_in_callback([[
banger.http.download({ url = "file://" .. home .. "/big.bin", path = home .. "/out", on_progress = function()
  arrived()
  while true do end
end })
]])
  end)

  it("a pull's progress callback stuck in a loop (oci.fetch against a local registry) exits 130", function()
    local ref, stop = registry()
    local ok, e = pcall(interrupt_in_callback, string.format([[
local resolved = banger.oci.resolve(%q, { cache = home .. "/cache" })
banger.oci.fetch(resolved, { cache = home .. "/cache", on_progress = function()
  arrived()
  while true do end
end })
]], ref))
    stop()
    assert(ok, e)
  end)

  it("a callback that swallows the interrupt does not lose it: the hook is re-armed", function()
    -- the raw native: its ECANCELED is a return value the script ignores
    interrupt_in_callback([[
local fs <close> = require("banger.native.ext4").create(home .. "/img", "16MiB")
local once = false
fs:apply_layer(home .. "/layer.tar", { on_progress = function()
  if once then return end
  once = true
  arrived()
  pcall(function() while true do end end)
end })
while true do end
]])
  end)
end)
