-- banger.sandbox without a VM: path checks, owners and reaping with real
-- processes, the per-VM agent lock, error codes, and the hostile workspace
-- tar. With a real VM under QEMU: e2e_sandbox_spec.lua.
local sandbox = require("banger.sandbox")

-- Runs `body` (Lua) in a banger process of its own in `home`; its stdout is JSON.
local function script(home, body)
  local path = t.tmpdir() .. "/s.lua"
  t.write(path, body)
  local r = t.banger({ "run", path }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

local FIELDS = [[image = "img", kernel = "k", driver = "qemu", vcpus = 1, memory_mib = 256, disk_mib = 1024,
  work_disk_mib = 64, nat = 0]]

local function code_of(fn, ...)
  local ok, e = pcall(fn, ...)
  t.falsy(ok, "expected an error")
  return e.code, e.message
end

describe("sandbox.check_path", function()
  it("normalises an absolute path", function()
    t.eq(sandbox.check_path("/root/a/./b//c/"), "/root/a/b/c")
    t.eq(sandbox.check_path("/"), "/")
    t.eq(sandbox.check_path("//./"), "/")
    t.eq(sandbox.check_path("/a..b/..c/c.."), "/a..b/..c/c..")
  end)

  it("refuses relative paths, '..', NUL, overlong paths and components, non-strings", function()
    for _, bad in ipairs({ "", "root/x", "./x", "/root/../etc/passwd", "/..", "/a/b/..", "/a\0b",
      "/" .. string.rep("a", 256), "/" .. string.rep("a/", 2100) }) do
      t.eq(code_of(sandbox.check_path, bad), "EINVAL", bad:sub(1, 40))
    end
    t.eq(code_of(sandbox.check_path, nil), "EINVAL")
    t.eq(code_of(sandbox.check_path, 42), "EINVAL")
  end)
end)

describe("sandbox owners", function()
  it("a session owner names this process by pid and start time", function()
    local owner = sandbox.session_owner()
    local pid, start = owner:match("^session:(%d+):(%d+)$")
    t.eq(tonumber(pid), banger.sys.getpid())
    t.truthy(tonumber(start) > 0)
    t.truthy(sandbox.owner_alive(owner))
  end)

  it("a killed process's session is dead; a reused pid with another start time is dead too", function()
    local child = t.spawn({ "sleep", "600" })
    local owner = sandbox.session_owner(child:pid())
    t.truthy(sandbox.owner_alive(owner))
    local pid, start = owner:match("^session:(%d+):(%d+)$")
    -- the same pid, started at another time: another process
    t.falsy(sandbox.owner_alive("session:" .. pid .. ":" .. (tonumber(start) + 1)))
    child:kill(9)
    child:wait()
    t.falsy(sandbox.owner_alive(owner))
    t.eq(code_of(sandbox.session_owner, child:pid()), "ESRCH")
  end)

  it("an api owner lives until its sandbox is deleted", function()
    t.truthy(sandbox.owner_alive("api:0"))
  end)

  it("reap deletes the sandboxes of gone sessions only", function()
    local live = t.spawn({ "sleep", "600" })
    local dead = t.spawn({ "sleep", "600" })
    local live_owner = sandbox.session_owner(live:pid())
    local dead_owner = sandbox.session_owner(dead:pid())
    dead:kill(9)
    dead:wait()
    local pid, start = live_owner:match("^session:(%d+):(%d+)$")
    local reused = "session:" .. pid .. ":" .. (tonumber(start) - 1)
    local r = script(t.tmpdir(), string.format([[
local sandbox = require("banger.sandbox")
for name, owner in pairs({ live = %q, dead = %q, reused = %q, api = "api:0" }) do
  banger.vms.insert(name, { %s, owner = owner })
end
banger.vms.insert("cli", { %s })
local removed = sandbox.reap("session:")
table.sort(removed)
local left = {}
for _, s in ipairs(sandbox.list()) do left[#left + 1] = s.name .. "=" .. tostring(s.owner) end
print(banger.json.encode({ removed = removed, left = left, again = sandbox.reap() }))
]], live_owner, dead_owner, reused, FIELDS, FIELDS))
    live:kill(9)
    live:wait()
    t.eq(r.removed, { "dead", "reused" })
    t.eq(r.left, { "api=api:0", "cli=nil", "live=" .. live_owner })
    t.eq(#r.again, 0)
  end)

  it("records the owner in the row and lists by owner", function()
    local r = script(t.tmpdir(), [[
local sandbox = require("banger.sandbox")
banger.vms.insert("a", { ]] .. FIELDS .. [[, owner = "api:1000" })
local b = banger.vms.insert("b", { ]] .. FIELDS .. [[, owner = "api:1001" })
banger.vms.update(b, { allow_hosts = banger.json.encode({ "a.test", "*.b.test" }) })
local mine = sandbox.list({ owner = "api:1000" })
local rec = sandbox.get("a")
print(banger.json.encode({ n = #mine, name = mine[1].name, rec = rec, by_id = sandbox.get(rec.id).name,
  rec_json = banger.json.encode(rec),
  b_allow = sandbox.get("b").allow_hosts,
  schema = banger.state.db():schema_version() }))
]])
    t.eq(r.n, 1)
    t.eq(r.name, "a")
    t.eq(r.rec.owner, "api:1000")
    t.eq(r.rec.memory_bytes, 256 * 1024 * 1024)
    t.eq(r.rec.nat, false)
    t.contains(r.rec_json, '"allow_hosts":[]', "an empty list is a JSON array")
    t.eq(r.rec.state, "creating")
    t.eq(r.by_id, "a")
    t.eq(r.b_allow, { "a.test", "*.b.test" }, "the record reports the VM's egress allow-list")
    t.truthy(r.schema >= 7)
  end)
end)

describe("sandbox errors", function()
  it("maps missing, stopped and malformed requests to ENOENT, ESRCH and EINVAL", function()
    local r = script(t.tmpdir(), [[
local sandbox = require("banger.sandbox")
banger.vms.insert("stopped", { ]] .. FIELDS .. [[ })
local function code(fn, ...)
  local ok, e = pcall(fn, ...)
  return ok and "ok" or e.code
end
print(banger.json.encode({
  get = code(sandbox.get, "nope"),
  delete = code(sandbox.delete, "nope"),
  exec_missing = code(sandbox.exec, "nope", { argv = { "true" } }),
  exec_stopped = code(sandbox.exec, "stopped", { argv = { "true" } }),
  exec_argv = code(sandbox.exec, "stopped", { argv = {} }),
  exec_timeout = code(sandbox.exec, "stopped", { argv = { "true" }, timeout_ms = 0 }),
  exec_env = code(sandbox.exec, "stopped", { argv = { "true" }, env = { "no equals" } }),
  read_rel = code(sandbox.read_file, "stopped", "etc/passwd"),
  write_dotdot = code(sandbox.write_file, "stopped", "/root/../etc/x", "x"),
  write_mode = code(sandbox.write_file, "stopped", "/root/x", "x", { mode = -1 }),
  write_big = code(sandbox.write_file, "stopped", "/root/x", "xxxx", { max_bytes = 3 }),
  remove_root = code(sandbox.remove_file, "stopped", "/", { recursive = true }),
  remove_root2 = code(sandbox.remove_file, "stopped", "//.", { recursive = true }),
  list_stopped = code(sandbox.list_files, "stopped", "/root"),
  owner = code(sandbox.create, { owner = "nobody here" }),
  allow = code(sandbox.create, { allow_hosts = { "*" } }),
}))
]])
    t.eq(r.get, "ENOENT")
    t.eq(r.delete, "ENOENT")
    t.eq(r.exec_missing, "ENOENT")
    t.eq(r.exec_stopped, "ESRCH")
    t.eq(r.exec_argv, "EINVAL")
    t.eq(r.exec_timeout, "EINVAL")
    t.eq(r.exec_env, "EINVAL")
    t.eq(r.read_rel, "EINVAL")
    t.eq(r.write_dotdot, "EINVAL")
    t.eq(r.write_mode, "EINVAL")
    t.eq(r.write_big, "EFBIG")
    t.eq(r.remove_root, "EINVAL")
    t.eq(r.remove_root2, "EINVAL")
    t.eq(r.list_stopped, "ESRCH")
    t.eq(r.owner, "EINVAL")
    t.eq(r.allow, "EINVAL", "a bare * is no allow-list pattern")
  end)
end)

describe("sandbox agent lock", function()
  it("an operation waits a bounded time for another one's agent use, then EBUSY", function()
    local home = t.tmpdir()
    local made = script(home, [[
local row = banger.vms.insert("box", { ]] .. FIELDS .. [[ })
banger.vms.set_state(row, "stopped") -- not a create that died (reconcile would remove it)
banger.fs.mkdir(banger.vms.dir(row), 448, true)
print(banger.json.encode({ dir = banger.vms.dir(row) }))
]])
    -- another banger process holds the agent lock, as a running exec would
    local ready = t.tmpdir() .. "/ready"
    local holder_script = t.tmpdir() .. "/hold.lua"
    t.write(holder_script, string.format([[
local l = banger.fs.lock(%q)
local f = assert(io.open(%q, "w"))
f:close()
banger.sys.sleep_ms(600000)
]], made.dir .. "/agent.lock", ready))
    local holder = t.spawn({ t.bin(), "run", holder_script, env = t.env(home), cwd = home, stdout = "null",
      stderr = { file = home .. "/holder.err" } })
    t.wait_for(function() return banger.fs.exists(ready) end, 60000, "the lock holder: " .. tostring(banger.fs.read(home .. "/holder.err")))
    local r = script(home, [[
local sandbox = require("banger.sandbox")
local t0 = banger.sys.monotonic_ms()
local ok, e = pcall(sandbox.with_agent, banger.vms.require("box"), function() return "ran" end, { wait_ms = 300 })
print(banger.json.encode({ ok = ok, code = e.code, message = e.message, waited = banger.sys.monotonic_ms() - t0 }))
]])
    t.eq(r.ok, false)
    t.eq(r.code, "EBUSY")
    t.contains(r.message, "sandbox 'box' is busy: another operation is using its agent")
    t.truthy(r.waited >= 300, r.waited)
    holder:kill(9)
    holder:wait()
    -- released: the lock is taken, and the stopped VM's agent is then refused
    local r2 = script(home, [[
local ok, e = pcall(require("banger.sandbox").with_agent, banger.vms.require("box"), function() return "ran" end,
  { wait_ms = 5000 })
print(banger.json.encode({ ok = ok, code = e.code }))
]])
    t.eq(r2.code, "ESRCH")
  end)
end)

describe("sandbox workspace tar", function()
  local function tar_of(entries)
    local dir = t.tmpdir()
    local py = dir .. "/mk.py"
    t.write(py, [[
import io, sys, tarfile
spec = sys.argv[2:]
with tarfile.open(sys.argv[1], "w") as tf:
    for item in spec:
        kind, name, arg = item.split("|", 2)
        ti = tarfile.TarInfo(name)
        if kind == "file":
            data = arg.encode()
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        elif kind == "link":
            ti.type = tarfile.SYMTYPE
            ti.linkname = arg
            tf.addfile(ti)
        elif kind == "hard":
            ti.type = tarfile.LNKTYPE
            ti.linkname = arg
            tf.addfile(ti)
]])
    local argv = { "python3", py, dir .. "/ws.tar" }
    for _, e in ipairs(entries) do
      argv[#argv + 1] = e
    end
    local r = banger.proc.run(argv)
    t.eq(r.code, 0, r.stderr)
    return dir .. "/ws.tar"
  end

  it("repacks a good tar with its files and links", function()
    local dir = t.tmpdir()
    local clean = sandbox.clean_tar(tar_of({ "file|src/main.c|int main;", "link|src/alias.c|main.c", "file|README|hi" }),
      dir)
    local out = t.tmpdir()
    local r = banger.proc.run({ "tar", "-tvf", clean })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stdout, "src/main.c")
    t.contains(r.stdout, "src/alias.c -> main.c")
    banger.proc.run({ "tar", "-xf", clean, "-C", out })
    t.eq(t.read(out .. "/src/main.c"), "int main;")
  end)

  for _, case in ipairs({
    { "a '..' entry", { "file|../../escaped|out" }, "escaped" },
    { "an absolute entry", { "file|/tmp/SANDBOX_ABS_ESCAPE|out" }, nil },
    { "a write through a symlink", { "link|sub|OUTSIDE", "file|sub/planted|out" }, "planted" },
    { "a hard link to outside", { "hard|h|../../../etc/passwd" }, nil },
  }) do
    it("refuses a hostile tar: " .. case[1] .. ", and nothing lands outside", function()
      local base = t.tmpdir()
      local outside = base .. "/outside"
      banger.fs.mkdir(outside, 448)
      local entries = {}
      for i, e in ipairs(case[2]) do
        entries[i] = e:gsub("OUTSIDE", outside)
      end
      local dir = base .. "/work/deep/er"
      banger.fs.mkdir(dir, 448, true)
      local ok, e = pcall(sandbox.clean_tar, tar_of(entries), dir)
      t.falsy(ok, "a hostile tar must be refused")
      t.eq(e.code, "EINVAL", e.message)
      t.eq(#banger.fs.list(outside), 0)
      if case[3] then
        t.falsy(banger.fs.exists(base .. "/work/" .. case[3]))
        t.falsy(banger.fs.exists(base .. "/" .. case[3]))
      end
      t.falsy(banger.fs.exists("/tmp/SANDBOX_ABS_ESCAPE"))
    end)
  end
end)
