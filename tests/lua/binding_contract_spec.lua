-- The binding contract (docs/architecture.md, "Errors" and "Handles"),
-- checked for every handle type a test can make on this machine, through
-- the real natives: one name scheme banger.<module>.<type>; a closed handle
-- raises on use; close twice is harmless; __close and __gc both release
-- what the handle holds (its descriptors: /proc/self/fd counts them). Then
-- bad arguments raise while runtime failures return nil, message, code, and
-- require("banger.<module>") is the banger.<module> table.
--
-- banger.oci.pull and banger.oci.stream are checked against a local
-- registry (Debian's docker-registry), once for both. Not here:
-- banger.ssh.client, which needs a real sshd (ssh_spec.lua runs one).

local function open_fds()
  return #banger.fs.list("/proc/self/fd")
end

local function collect()
  collectgarbage("collect")
  collectgarbage("collect")
end

local agent_bin = (os.getenv("BANGER_BUILD_DIR") or "") .. "/cli/banger-agent/banger-agent"

-- name, make() -> handle, use(h) calls one of its methods; `peer` starts
-- what the handle talks to and returns a stop function.
local TYPES = {
  { name = "banger.fs.lock", make = function(dir)
    return assert(require("banger.native.fs").lock(dir .. "/lock"))
  end },  -- its one method, remove, is a close that also unlinks: harmless twice (below)
  { name = "banger.ext4.fs", make = function(dir)
    return assert(require("banger.native.ext4").create(dir .. "/img", "8MiB"))
  end, use = function(h) return h:size() end },
  { name = "banger.store.db", make = function(dir)
    return assert(require("banger.native.store").open(dir .. "/db.sqlite"))
  end, use = function(h) return h:schema_version() end },
  { name = "banger.dns.server", make = function()
    return assert(require("banger.native.dns").listen("127.0.0.1", 0))
  end, use = function(h) return h:port() end },
  { name = "banger.portfwd.forwarder", make = function()
    return assert(require("banger.native.portfwd").open({ guest_ip = "127.0.0.1",
      rules = { { proto = "tcp", host_address = "127.0.0.1", host_port = 0, guest_port = 80 } } }))
  end, use = function(h) return h:port(1) end },
  { name = "banger.proc.child", make = function()
    return assert(require("banger.native.proc").spawn({ "true", stdout = "pipe", stderr = "pipe" }))
  end, use = function(h) return h:pid() end },
  { name = "banger.priv.fd", make = function(dir)
    t.write(dir .. "/kernel", "k")
    local _, fds = assert(require("banger.native.vmm").isolated_request({ id = "c", name = "c",
      kernel = dir .. "/kernel", vm_dir = dir, runtime_dir = dir, console_log = dir .. "/console.log" }, "tcg"))
    for i = 2, #fds do
      fds[i]:close()
    end
    return fds[1]
  end, use = function(h) return h:fileno() end },
  { name = "banger.agent.client", peer = function(dir)
    local child = t.spawn({ agent_bin, "--unix", dir .. "/agent.sock" })
    return function()
      child:kill(9)
      child:wait(5000)
    end
  end, make = function(dir)
    return assert(require("banger.native.agent").connect({ kind = "unix", path = dir .. "/agent.sock", wait = true,
      timeout_ms = 10000 }))
  end, use = function(h) return h:ping() end },
}

local function with_peer(kind, fn)
  local dir = t.tmpdir()
  local stop = kind.peer and kind.peer(dir) or function() end
  local ok, e = pcall(fn, dir)
  stop()
  if not ok then
    error(e, 0)
  end
end

describe("handles", function()
  for _, kind in ipairs(TYPES) do
    describe(kind.name, function()
      it("is named banger.<module>.<type> in its metatable and tostring", function()
        with_peer(kind, function(dir)
          local h = kind.make(dir)
          t.eq(getmetatable(h).__name, kind.name)
          t.truthy(kind.name:match("^banger%.[%l%d]+%.%l+$"), kind.name)
          t.eq(tostring(h):sub(1, #kind.name), kind.name)
          h:close()
          t.eq(tostring(h), kind.name .. " (closed)")
        end)
      end)

      it("raises 'attempt to use a closed " .. kind.name .. "' after close; a second close is harmless", function()
        with_peer(kind, function(dir)
          local h = kind.make(dir)
          t.eq(h:close(), true)
          t.eq(h:close(), true)
          if kind.use then
            local ok, e = pcall(kind.use, h)
            t.falsy(ok)
            t.contains(e, "attempt to use a closed " .. kind.name)
          else
            t.eq(h:remove(), true)
          end
        end)
      end)

      it("releases what it holds on close, on __close and on __gc", function()
        with_peer(kind, function(dir)
          collect()  -- handles earlier tests dropped
          local before = open_fds()
          local h = kind.make(dir)
          t.truthy(open_fds() > before, "the handle holds a descriptor")
          h:close()
          t.eq(open_fds(), before, "after close")
          do
            local scoped <close> = kind.make(dir)
            t.truthy(open_fds() > before)
          end
          t.eq(open_fds(), before, "after __close")
          h = kind.make(dir)
          t.truthy(open_fds() > before)
          h = nil
          collect()
          t.eq(open_fds(), before, "after __gc")
        end)
      end)
    end)
  end

  it("banger.oci.pull and banger.oci.stream, against a local registry: names, closed use, double close, release",
    function()
      local fixtures = t.source_dir() .. "/tests/fixtures"
      local reg = t.tmpdir()
      local r = banger.proc.run({ fixtures .. "/registry.sh", "start", reg, timeout_ms = 60000 })
      t.eq(r.code, 0, r.stderr)
      local ok, e = pcall(function()
        local addr = r.stdout:gsub("%s+$", "")
        local img = banger.proc.run({ fixtures .. "/make-oci-image.sh", reg .. "/work", addr, "banger/test",
          timeout_ms = 120000 })
        t.eq(img.code, 0, img.stderr)
        local oci = require("banger.native.oci")
        local cache = t.tmpdir()
        local resolved = assert(oci.resolve(addr .. "/banger/test:v1", { cache = cache }))
        local function tasks()
          return #banger.fs.list("/proc/self/task")
        end
        collect()
        local threads = tasks()
        -- A joined thread can stay listed in /proc/self/task for a moment
        -- after its join returns (its exit is still being finished).
        local function settles(what)
          t.wait_for(function() return tasks() == threads end, 5000, what .. " (threads back to " .. threads .. ")")
        end
        local pull = assert(oci.pull(resolved, { cache = cache }))
        t.eq(getmetatable(pull).__name, "banger.oci.pull")
        local stream = assert(pull:open(1))
        t.eq(getmetatable(stream).__name, "banger.oci.stream")
        t.eq(tostring(stream):sub(1, 17), "banger.oci.stream")
        t.eq(stream:close(), true)
        t.eq(stream:close(), true)
        t.eq(tostring(stream), "banger.oci.stream (closed)")
        -- a closed stream is refused where a stream is read
        local fsys <close> = assert(require("banger.native.ext4").create(cache .. "/img", "16MiB"))
        local used, err = pcall(fsys.apply_layer, fsys, stream)
        t.falsy(used)
        t.contains(err, "attempt to use a closed banger.oci.stream")
        -- (its download thread may already have ended: the images are small)
        t.eq(pull:close(), true)
        t.eq(pull:close(), true)
        settles("close joined the pull's thread")
        local p2, msg = pcall(pull.progress, pull)
        t.falsy(p2)
        t.contains(msg, "attempt to use a closed banger.oci.pull")
        do
          local scoped <close> = assert(oci.pull(resolved, { cache = cache }))
        end
        settles("after __close")
        pull = assert(oci.pull(resolved, { cache = cache }))
        pull = nil
        collect()
        settles("after __gc")
      end)
      banger.proc.run({ fixtures .. "/registry.sh", "stop", reg })
      assert(ok, e)
    end)

  it("the lock is free again after __gc (another open file description gets it)", function()
    local dir = t.tmpdir()
    local fs = require("banger.native.fs")
    local h = assert(fs.lock(dir .. "/lock"))
    t.falsy(fs.lock(dir .. "/lock", { timeout_ms = 0 }), "held")
    h = nil
    collect()
    local again = fs.lock(dir .. "/lock", { timeout_ms = 0 })
    t.truthy(again, "free")
    again:close()
  end)

  it("a handle of one type is refused where another is expected, naming both", function()
    local dir = t.tmpdir()
    local db <close> = assert(require("banger.native.store").open(dir .. "/db.sqlite"))
    local fs = assert(require("banger.native.ext4").create(dir .. "/img", "8MiB"))
    local ok, e = pcall(fs.size, db)
    t.falsy(ok)
    t.contains(e, "banger.ext4.fs expected, got banger.store.db")
    fs:close()
  end)
end)

describe("arguments raise, runtime failures return nil, message, code", function()
  local fs = require("banger.native.fs")

  it("a wrong type raises, naming the native and the caller's line", function()
    local ok, e = pcall(fs.read, 42)
    t.falsy(ok)
    t.contains(e, "binding_contract_spec.lua:")
    t.contains(e, "bad argument #1 to 'fs.read' (string expected, got number)")
  end)

  it("a runtime failure is nil, message, code", function()
    local v, msg, code = fs.read("/nonexistent/banger-contract")
    t.eq({ v, code }, { nil, "ENOENT" })
    t.contains(msg, "/nonexistent/banger-contract")
  end)

  it("an options argument of the wrong type raises instead of meaning 'no options'", function()
    local dir = t.tmpdir()
    t.raises(function() fs.lock(dir .. "/l", "shared") end, "bad argument #2 to 'fs.lock' (table expected, got string)")
    t.raises(function() banger.json.encode({}, 2) end, "(table expected, got number)")
    t.raises(function() require("banger.native.http").fetch("file:///dev/null", true) end, "table expected")
    t.raises(function() require("banger.native.ext4").open(dir .. "/img", "rw") end, "table expected")
    -- nil still means no options
    local l = assert(fs.lock(dir .. "/l", nil))
    l:close()
  end)

  it("an option of the wrong type raises, naming the option", function()
    local dir = t.tmpdir()
    t.raises(function() fs.lock(dir .. "/l", { timeout_ms = "soon" }) end, "bad option 'timeout_ms' (integer expected, got string)")
    t.raises(function()
      require("banger.native.http").download({ url = "file:///dev/null", path = dir .. "/x", on_progress = "yes" })
    end, "bad option 'on_progress' (function expected, got string)")
  end)

  it("integers are range-checked for the C type they become", function()
    local dir = t.tmpdir()
    t.raises(function() fs.mkdir(dir .. "/d", -1) end, "bad argument #2 to 'fs.mkdir' (-1 out of range 0..4095)")
    t.raises(function() fs.chmod(dir, 1 << 40) end, "out of range")
    t.raises(function() require("banger.native.dns").listen("127.0.0.1", 70000) end, "(70000 out of range 0..65535)")
    t.raises(function() banger.sys.sleep_ms(-5) end, "out of range")
    t.raises(function() fs.lock(dir .. "/l", { timeout_ms = -1 }) end, "bad option 'timeout_ms' (-1 out of range")
    local img <close> = assert(require("banger.native.ext4").create(dir .. "/img", "8MiB"))
    t.raises(function() img:chown("/", -1, 0) end, "out of range 0..4294967295")
    t.raises(function() img:chown("/", 1 << 32, 0) end, "out of range 0..4294967295")
    t.raises(function() img:write("/f", "x", { uid = 1 << 33 }) end, "bad option 'uid'")
    t.raises(function() banger.http.fetch("file:///dev/null", { max_bytes = -1 }) end, "bad option 'max_bytes'")
    local child = require("banger.native.proc").spawn({ "true" })
    t.raises(function() child:kill(-9) end, "out of range")
    t.raises(function() child:wait(-1) end, "out of range")
    child:wait(5000)
  end)

  it("std::filesystem errors carry their errno name, not EINTERNAL", function()
    -- qcow2_overlay makes the base path absolute with std::filesystem,
    -- which throws filesystem_error (EINVAL) for an empty path
    local dir = t.tmpdir()
    local v, msg, code = require("banger.native.vmm").qcow2_overlay("", dir .. "/ov.qcow2")
    t.eq({ v, code }, { nil, "EINVAL" })
    t.contains(msg, "cannot make absolute path")
  end)
end)

describe("require", function()
  it("require('banger.<module>') is the banger.<module> table, for every native and stdlib module", function()
    local names = {}
    for key in pairs(package.preload) do
      local name = key:match("^banger%.native%.([%w_]+)$")
      if name then
        names[#names + 1] = name
      end
    end
    t.truthy(#names > 10, "natives found: " .. #names)
    local stdlib = t.source_dir() .. "/lua/stdlib/banger"
    for _, file in ipairs(banger.fs.list(stdlib)) do
      local name = file:match("^([%w_]+)%.lua$")
      if name and name ~= "init" then
        names[#names + 1] = name
      end
    end
    for _, name in ipairs(names) do
      local via_require = require("banger." .. name)
      t.eq(type(via_require), "table", name)
      t.truthy(rawequal(via_require, banger[name]), "require('banger." .. name .. "') == banger." .. name)
    end
    -- the wrapped view: a native's failure raises through require'd modules too
    t.raises(function() require("banger.ext4").open("/nonexistent/img") end, "ENOENT")
  end)

  it("an unknown module still fails with Lua's own message", function()
    local ok, e = pcall(require, "banger.no_such_module")
    t.falsy(ok)
    t.contains(e, "module 'banger.no_such_module' not found")
  end)
end)
