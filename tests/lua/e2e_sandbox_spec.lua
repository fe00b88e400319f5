-- End to end: banger.sandbox on a real kernel under QEMU (TCG here), the
-- real agent in the guest (image "tiny": busybox, no network, so exec goes
-- through the agent and its per-VM lock). One sandbox is booted; a fork
-- of it is the second VM. The pure parts are in sandbox_spec.lua.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

-- Runs `body` in a banger process of its own in `home`; its stdout is JSON.
local function script(home, body, timeout_ms)
  local path = t.tmpdir() .. "/s.lua"
  t.write(path, "local sandbox = require('banger.sandbox')\n" .. body)
  local r = t.banger({ "run", path }, { home = home, timeout_ms = timeout_ms or 300000 })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

local function spawn_script(home, body, out)
  local path = t.tmpdir() .. "/bg.lua"
  t.write(path, "local sandbox = require('banger.sandbox')\n" .. body)
  return t.spawn({ t.bin(), "run", path, env = t.env(home), cwd = home, stdout = { file = out },
    stderr = { file = out .. ".err" } })
end

local function sha256_of(path)
  local r = banger.proc.run({ "sha256sum", path })
  t.eq(r.code, 0, r.stderr)
  return r.stdout:match("^(%x+)")
end

describe("banger.sandbox on a real kernel", function()
  local home
  after_each(function()
    -- a failed assertion must not leave the VMs running
    for _, name in ipairs({ "sb-copy", "sb" }) do
      t.banger({ "vm", "delete", "--force", name }, { home = home })
    end
  end)

  it("create with a workspace, exec, files, concurrency, fork, snapshot, delete", function()
    home = e2e.home()
    local ws = t.tmpdir()
    banger.fs.mkdir(ws .. "/src", 493, true)
    t.write(ws .. "/src/main.c", "int main(void) { return 0; }\n")
    local tar = t.tmpdir() .. "/ws.tar"
    t.eq(banger.proc.run({ "tar", "-cf", tar, "-C", ws, "src" }).code, 0)

    -- create: started, agent up, owner recorded, workspace unpacked
    local rec = script(home, string.format([[
local stages = {}
local r = sandbox.create({ name = "sb", image = "tiny", memory = "256MiB", owner = "api:0", workspace_tar = %q,
  on_stage = function(s) stages[#stages + 1] = s end })
print(banger.json.encode({ rec = r, stages = stages }))
]], tar))
    t.eq(rec.rec.name, "sb")
    t.eq(rec.rec.state, "running")
    t.eq(rec.rec.owner, "api:0")
    t.eq(rec.rec.memory_bytes, 256 * 1024 * 1024)
    t.contains(table.concat(rec.stages, ","), "wait for agent")
    t.contains(table.concat(rec.stages, ","), "workspace")

    -- exec: output, exit code, stdin, env, cwd, streaming, timeout
    local ex = script(home, [[
local out = {}
local r = {
  plain = sandbox.exec("sb", { argv = { "sh", "-c", "echo out; echo err >&2; exit 3" } }),
  stdin = sandbox.exec("sb", { argv = { "cat" }, stdin = "fed\0in" }),
  envcwd = sandbox.exec("sb", { argv = { "sh", "-c", "echo $GREETING; pwd" }, env = { "GREETING=hi" }, cwd = "/tmp" }),
  ws = sandbox.exec("sb", { argv = { "cat", "/root/workspace/src/main.c" } }),
}
r.streamed = sandbox.exec("sb", { argv = { "sh", "-c", "echo a; echo b" },
  on_stdout = function(c) out[#out + 1] = c end })
r.streamed_out = table.concat(out)
local t0 = banger.sys.monotonic_ms()
r.timeout = sandbox.exec("sb", { argv = { "sh", "-c", "echo before; exec sleep 600" }, timeout_ms = 3000 })
r.timeout_took = banger.sys.monotonic_ms() - t0
r.after = sandbox.exec("sb", { argv = { "echo", "still serving" } })
print(banger.json.encode(r))
]])
    t.eq(ex.plain.code, 3)
    t.eq(ex.plain.stdout, "out\n")
    t.eq(ex.plain.stderr, "err\n")
    t.eq(ex.plain.timed_out, false)
    t.eq(ex.stdin.stdout, "fed\0in")
    t.eq(ex.envcwd.stdout, "hi\n/tmp\n")
    t.eq(ex.ws.stdout, "int main(void) { return 0; }\n")
    t.eq(ex.streamed.code, 0)
    t.eq(ex.streamed_out, "a\nb\n")
    t.eq(ex.streamed.stdout, nil)
    t.eq(ex.timeout.timed_out, true)
    t.eq(ex.timeout.signal, 9)
    t.eq(ex.timeout.stdout, "before\n")
    t.truthy(ex.timeout_took >= 3000 and ex.timeout_took < 60000, ex.timeout_took)
    t.eq(ex.after.stdout, "still serving\n")

    -- files: a 10 MiB binary file streamed in and out byte-identical
    local dir = t.tmpdir()
    t.eq(banger.proc.run({ "head", "-c", "10485760", "/dev/urandom", stdout = { file = dir .. "/in.bin" } }).code, 0)
    local fl = script(home, string.format([[
local f = assert(io.open(%q, "rb"))
local w = sandbox.write_file("sb", "/root/big.bin", function() return f:read(100000) end, { mode = 384 })
f:close()
local o = assert(io.open(%q, "wb"))
sandbox.read_file("sb", "/root/big.bin", { on_data = function(c) o:write(c) end, max_bytes = 16 * 1024 * 1024 })
o:close()
]], dir .. "/in.bin", dir .. "/out.bin") .. [[
local okw, ew = pcall(sandbox.write_file, "sb", "/root/d/x", "x")
sandbox.exec("sb", { argv = { "mkdir", "-p", "/root/d/sub" } })
sandbox.write_file("sb", "/root/d/x", "small")
sandbox.exec("sb", { argv = { "sh", "-c", "mkdir /root/keep && echo k > /root/keep/precious && busybox ln -s /root/keep /root/d/keeplink" } })
local names = {}
for _, e in ipairs(sandbox.list_files("sb", "/root/d")) do names[e.name] = e end
local function code(fn, ...) local ok, e = pcall(fn, ...) return ok and "ok" or e.code end
local r = {
  bytes = w.bytes, write_missing_parent = not okw and ew.code,
  x = names.x, sub = names.sub, link = names.keeplink,
  small = sandbox.read_file("sb", "/root/d/x"),
  big_limit = code(sandbox.read_file, "sb", "/root/big.bin", { max_bytes = 1000 }),
  dir_read = code(sandbox.read_file, "sb", "/root/d"),
  missing = code(sandbox.read_file, "sb", "/root/nope"),
  device = code(sandbox.read_file, "sb", "/dev/zero"),
  nonempty = code(sandbox.remove_file, "sb", "/root/d"),
  mode = sandbox.list_files("sb", "/root/big.bin")[1].mode,
}
sandbox.remove_file("sb", "/root/d", { recursive = true })
r.kept = sandbox.read_file("sb", "/root/keep/precious")
r.gone = code(sandbox.list_files, "sb", "/root/d")
print(banger.json.encode(r))
]])
    t.eq(fl.bytes, 10485760)
    t.eq(sha256_of(dir .. "/out.bin"), sha256_of(dir .. "/in.bin"))
    t.eq(fl.write_missing_parent, "ENOENT")
    t.eq(fl.x.type, "file")
    t.eq(fl.x.size, 5)
    t.eq(fl.sub.type, "dir")
    t.eq(fl.link.type, "link")
    t.eq(fl.small, "small")
    t.eq(fl.big_limit, "EFBIG")
    t.eq(fl.dir_read, "EISDIR")
    t.eq(fl.missing, "ENOENT")
    t.eq(fl.device, "EINVAL", "a device is not read (it may never end)")
    t.eq(fl.nonempty, "ENOTEMPTY")
    t.eq(fl.mode, 384)
    t.eq(fl.kept, "k\n", "a recursive remove does not cross the link into /root/keep")
    t.eq(fl.gone, "ENOENT")

    -- two operations on one sandbox at once: neither kills the other; one
    -- waits for the agent (or, told to wait less, gets EBUSY)
    local bg = t.tmpdir()
    local marker = bg .. "/started"
    local long = spawn_script(home, string.format([[
local out = {}
local r = sandbox.exec("sb", { argv = { "sh", "-c", "echo start; sleep 4; echo finished" },
  on_stdout = function(c)
    out[#out + 1] = c
    local f = io.open(%q, "w") f:close()
  end })
r.out = table.concat(out)
print(banger.json.encode(r))
]], marker), bg .. "/long.json")
    t.wait_for(function() return banger.fs.exists(marker) end, 120000, "the long exec to start")
    local busy = script(home, [[
sandbox.agent_wait_ms = 200
local ok, e = pcall(sandbox.list_files, "sb", "/root")
print(banger.json.encode({ ok = ok, code = e.code, message = e.message }))
]])
    t.eq(busy.ok, false)
    t.eq(busy.code, "EBUSY")
    t.contains(busy.message, "sandbox 'sb' is busy")
    local waited = script(home, [[
local t0 = banger.sys.monotonic_ms()
local s = sandbox.read_file("sb", "/root/workspace/src/main.c")
print(banger.json.encode({ s = s, waited = banger.sys.monotonic_ms() - t0 }))
]])
    t.eq(waited.s, "int main(void) { return 0; }\n")
    t.eq(long:wait().code, 0, t.read(bg .. "/long.json.err"))
    local lr = banger.json.decode(t.read(bg .. "/long.json"))
    t.eq(lr.code, 0, "the long command was not killed by the other sessions")
    t.eq(lr.out, "start\nfinished\n")
    t.eq(lr.timed_out, false)

    -- SIGTERM to banger ends the guest command it runs, and the agent is free again
    local tmarker = bg .. "/term-started"
    local term = spawn_script(home, string.format([[
sandbox.exec("sb", { argv = { "sh", "-c", "echo go; exec sleep 600" },
  on_stdout = function() local f = io.open(%q, "w") f:close() end })
]], tmarker), bg .. "/term.json")
    t.wait_for(function() return banger.fs.exists(tmarker) end, 120000, "the command to start")
    term:kill(15)
    t.eq(term:wait(60000).code, 143)
    local after = script(home, [[
print(banger.json.encode(sandbox.exec("sb", { argv = { "sh", "-c", "pidof sleep || echo none" } })))
]])
    t.eq(after.stdout, "none\n", "the guest command ended with banger")

    -- fork and snapshot
    local fk = script(home, [[
local f = sandbox.fork("sb", { name = "sb-copy" })
local r = { rec = f, host = sandbox.exec("sb-copy", { argv = { "hostname" } }).stdout,
  file = sandbox.exec("sb-copy", { argv = { "cat", "/root/workspace/src/main.c" } }).stdout }
sandbox.delete("sb-copy")
r.snap = sandbox.snapshot("sb", { name = "sb-snap" })
local ok, e = pcall(sandbox.get, "sb-copy")
r.deleted = not ok and e.code
print(banger.json.encode(r))
]])
    t.eq(fk.rec.name, "sb-copy")
    t.eq(fk.rec.owner, "api:0", "a fork belongs to the source's owner")
    t.eq(fk.rec.state, "running")
    t.eq(fk.host, "sb-copy\n")
    t.eq(fk.file, "int main(void) { return 0; }\n")
    t.eq(fk.snap.name, "sb-snap")
    t.eq(fk.snap.source_vm, "sb")
    t.eq(fk.deleted, "ENOENT")

    local del = script(home, [[
sandbox.delete("sb")
local r = { n = #sandbox.list() }
-- the source's disks were built on its snapshot: deletable once it is gone
banger.snapshots.delete("sb-snap")
r.snapshots = {}
for _, s in ipairs(banger.snapshots.list()) do r.snapshots[#r.snapshots + 1] = s.name .. ":" .. s.kind end
print(banger.json.encode(r))
]])
    t.eq(del.n, 0)
    t.eq(del.snapshots, {}, "no snapshot is left behind (the fork's is removed with its last user)")
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
