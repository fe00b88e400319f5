-- banger status against real parts: kernels, images, snapshots and the OCI
-- cache on disk (sparse files, a qcow2 overlay, a layer hard-linked into two
-- snapshots), VM rows in every state in the real store (the running ones
-- with a stand-in hypervisor that reconcile accepts), a real `dns serve`,
-- a real bridge in a namespace of the test's own, the real banger-helper on
-- a test socket; every number checked against du and find. Then as a
-- regular user without a helper, with the images directory unreadable.
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()
local netns = assert(loadfile(t.source_dir() .. "/tests/lua/netns.lua", "t", _ENV))()

local USER = 65534

local function sh(argv)
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
  return r.stdout
end

-- What du counts below `dir`: allocated bytes, each inode once.
local function du(dir)
  return math.tointeger(tonumber(sh({ "du", "-s", "--block-size=1", dir }):match("^(%d+)")))
end

local function count_files(dir)
  local n = 0
  for _ in sh({ "find", dir, "-type", "f" }):gmatch("[^\n]+") do
    n = n + 1
  end
  return n
end

-- A file of `size` bytes holding `data` at each offset of `at` (a hole elsewhere).
local function sparse(path, size, at, data)
  t.write(path, "")
  local f = assert(io.open(path, "r+b"))
  for _, off in ipairs(at) do
    f:seek("set", off)
    f:write(data)
  end
  f:close()
  sh({ "truncate", "-s", tostring(size), path })
end

-- A directory every uid can traverse.
local function open_dir()
  local d = t.tmpdir()
  sh({ "chmod", "0755", d })
  return d
end

local function helper_bin()
  return assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/banger-helper"
end

local function start_helper(sock, owner)
  local c = t.spawn({ helper_bin(), "--socket", sock, "--owner", owner .. ":" .. owner, stderr = "pipe" })
  t.wait_for(function() return banger.fs.exists(sock) end, 30000, "the helper's socket")
  return c
end

local function stop(child)
  child:kill(15)
  child:wait(15000)
end

local function config(home, lines)
  t.write(home .. "/.config/banger/config.lua", "return { " .. lines .. " }\n")
end

-- `banger status --json` (and the text), checked against docs/scripting.md.
local function status(run)
  local r = run({ "status", "--json" })
  t.eq(r.code, 0, r.stderr)
  local text = run({ "status" })
  t.eq(text.code, 0, text.stderr)
  return json_doc.conforms("status", r.stdout), text.stdout
end

local function line(text, label)
  return text:match("\n" .. label .. " +([^\n]*)") or text:match("^" .. label .. " +([^\n]*)")
end

-- VM rows: a running one with an address, a running one without, a
-- "running" one whose hypervisor is gone (reconcile makes it stopped), and
-- one each stopped, created and failed. Returns the stand-in hypervisors.
local function add_vms(home)
  local sleepers = { t.spawn({ "sleep", "600" }), t.spawn({ "sleep", "600" }) }
  t.write(home .. "/vms.lua", [[
local db = banger.state.db()
local function add(name, ip, state, pid)
  db:exec("INSERT INTO vms (id, name, image, kernel, driver, vcpus, memory_mib, disk_mib, work_disk_mib, ip, state, "
    .. "vm_dir, created_at, updated_at, handle_pid, handle_cmdline) VALUES (?, ?, 'i', 'k', 'qemu', 1, 128, 512, 64, ?, ?, "
    .. "'/x', 'now', 'now', ?, ?)", name, name, ip, state, pid and math.tointeger(tonumber(pid)) or banger.json.null,
    pid and '["sleep","600"]' or banger.json.null)
end
add("web", "172.30.0.5", "running", arg[1])
add("api", banger.json.null, "running", arg[2])
add("ghost", "172.30.0.7", "running")
add("off", "172.30.0.6", "stopped")
add("made", banger.json.null, "created")
add("broke", banger.json.null, "error")
]])
  local r = t.banger({ "run", home .. "/vms.lua", tostring(sleepers[1]:pid()), tostring(sleepers[2]:pid()) },
    { home = home })
  t.eq(r.code, 0, r.stderr)
  return sleepers
end

-- Two kernels and a directory without a manifest (no kernel, but its
-- bytes are on disk), each with a sparse initrd.
local function add_kernels(state)
  for _, name in ipairs({ "k1", "k2", "partial" }) do
    local dir = state .. "/kernels/" .. name
    if name ~= "partial" then
      t.write(dir .. "/manifest.json", banger.json.encode({ name = name, version = "6.1" }))
    end
    t.write(dir .. "/vmlinux", string.rep("k", 300000))
    sparse(dir .. "/initrd.img", 32 * 1024 * 1024, { 0, 8 * 1024 * 1024 }, string.rep("i", 5000))
  end
end

-- A pulled-style image (import) and a registered sparse one.
local function add_images(home)
  local src = t.tmpdir()
  t.write(src .. "/etc/os-release", "ID=test\n")
  t.write(src .. "/bin/tool", string.rep("x", 200000))
  sh({ "tar", "-C", src, "--owner=0", "--group=0", "-czf", home .. "/l1.tgz", "." })
  local r = t.banger({ "image", "import", "--name", "imp", home .. "/l1.tgz" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  sh({ "mkfs.ext4", "-q", "-F", home .. "/reg.ext4", "256M" })
  r = t.banger({ "image", "register", "--rootfs", home .. "/reg.ext4", "--name", "reg" }, { home = home })
  t.eq(r.code, 0, r.stderr)
end

-- Two ready snapshots: device state, a sparse RAM file, a qcow2 overlay
-- over the registered image; the second holds the first's overlay under
-- a second name (a hard link, as while a snapshot is taken).
local function add_snapshots(home, state)
  local ids = { "aaaaaaaaaaa1", "aaaaaaaaaaa2" }
  for i, id in ipairs(ids) do
    local dir = state .. "/snapshots/" .. id
    t.write(dir .. "/state", string.rep("s", 100000 * i))
    sparse(dir .. "/ram", 128 * 1024 * 1024, { 0, 64 * 1024 * 1024 }, string.rep("r", 12288))
  end
  local layer = state .. "/snapshots/" .. ids[1] .. "/rootfs.qcow2"
  sh({ "qemu-img", "create", "-q", "-f", "qcow2", "-b", state .. "/images/reg.ext4", "-F", "raw", layer })
  sh({ "ln", layer, state .. "/snapshots/" .. ids[2] .. "/rootfs.qcow2" })
  t.write(home .. "/snaps.lua", [[
for i, id in ipairs({ arg[1], arg[2] }) do
  banger.state.db():exec("INSERT INTO snapshots (id, name, kind, state, source_vm, source_name, driver, image, kernel, "
    .. "vcpus, memory_mib, disk_mib, work_disk_mib, restore, created_at) VALUES (?, ?, 'user', 'ready', 'v', 'box', "
    .. "'qemu', 'reg', 'k1', 1, 128, 512, 64, '{\"settled\":true}', 'now')", id, "snap" .. i)
end
]])
  local r = t.banger({ "run", home .. "/snaps.lua", ids[1], ids[2] }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return layer
end

-- An OCI layout as image pull leaves it: blobs, index, layout marker.
local function add_cache(home)
  local oci = home .. "/.cache/banger/oci"
  t.write(oci .. "/oci-layout", '{"imageLayoutVersion":"1.0.0"}')
  t.write(oci .. "/index.json", '{"schemaVersion":2,"manifests":[]}')
  for i = 1, 3 do
    t.write(oci .. "/blobs/sha256/" .. string.rep(tostring(i), 64), string.rep("b", 70000 * i))
  end
  return oci
end

describe("banger status", function()
  after_each(function()
    netns.cleanup()
  end)

  it("counts VMs by state, measures kernels, images, snapshots and the cache as du does, shows DNS and bridge", function()
    local home = t.tmpdir()
    local state = home .. "/.local/state/banger"
    local port = require("banger.native.dns").listen("127.0.0.1", 0)
    local dns_port = port:port()
    port:close()
    config(home, string.format('network = { mode = "off", dns = "127.0.0.1:%d", bridge = "br-fc-st", '
      .. 'bridge_ip = "172.31.9.1", cidr = 24 }', dns_port))
    local sleepers = add_vms(home)
    add_kernels(state)
    add_images(home)
    local layer = add_snapshots(home, state)
    local oci = add_cache(home)

    local ns = netns.new("status")
    local run = netns.banger(ns, home)

    -- no bridge in the namespace yet, no responder
    local s, text = status(run)
    t.eq(s.errors, {})
    t.eq(s.bridge.exists, false)
    t.eq(s.bridge.up, banger.json.null)
    t.eq(s.bridge.expected, "172.31.9.1/24")
    t.contains(line(text, "bridge"), "br-fc-st does not exist yet")
    t.eq({ s.dns.running, s.dns.address }, { false, "127.0.0.1:" .. dns_port })
    t.contains(line(text, "dns"), "not running")

    -- VMs: the dead "running" one was reconciled to stopped
    t.eq(s.vms.total, 6)
    t.eq(s.vms.by_state, { creating = 0, created = 1, starting = 0, running = 2, stopping = 0, stopped = 2, error = 1 })
    t.eq(s.vms.running, { "api", "web" })
    t.eq(line(text, "vms"), "6: 1 created, 2 running (api, web), 2 stopped, 1 error")

    -- disk use: what du says, hard links once, holes not counted
    t.eq({ s.kernels.count, s.kernels.bytes, s.kernels.dir }, { 2, du(state .. "/kernels"), state .. "/kernels" })
    t.eq({ s.images.count, s.images.bytes }, { 2, du(state .. "/images") })
    t.truthy(s.images.bytes < 64 * 1024 * 1024, "the 256 MiB sparse image counts its blocks: " .. s.images.bytes)
    t.eq({ s.snapshots.count, s.snapshots.bytes }, { 2, du(state .. "/snapshots") })
    local naive = 0 -- every name's blocks, the link's twice
    for f in sh({ "find", state .. "/snapshots" }):gmatch("[^\n]+") do
      naive = naive + banger.fs.lstat(f).blocks_bytes
    end
    t.eq(s.snapshots.bytes, naive - banger.fs.stat(layer).blocks_bytes, "the linked layer counts once")
    t.truthy(s.snapshots.bytes < 2 * 1024 * 1024, "the 128 MiB RAM files count their blocks: " .. s.snapshots.bytes)
    t.eq({ s.cache.count, s.cache.bytes }, { count_files(oci), du(oci) })
    t.eq(s.cache.count, 5)
    t.eq(line(text, "kernels"), "2, " .. banger.units.format_bytes(du(state .. "/kernels")))
    t.eq(line(text, "oci cache"), "5 files, " .. banger.units.format_bytes(du(oci)))

    -- the doctor's fast checks: the same verdicts `banger doctor` gives them
    local full = banger.json.decode(run({ "doctor", "--json" }).stdout)
    local want = { ok = 0, warnings = 0, failures = 0, skipped = 0 }
    local slow = { qemu = true, firecracker = true, orphans = true }
    for _, c in ipairs(full.checks) do
      if not slow[c.name] then
        local key = ({ ok = "ok", warn = "warnings", fail = "failures", skip = "skipped" })[c.status]
        want[key] = want[key] + 1
      end
    end
    t.eq({ ok = s.doctor.ok, warnings = s.doctor.warnings, failures = s.doctor.failures, skipped = s.doctor.skipped },
      want)
    t.eq(s.doctor.left_out, { "qemu", "firecracker", "orphans" })
    t.contains(line(text, "doctor"), want.warnings .. " warning")
    t.contains(line(text, "doctor"), "run banger doctor")

    -- a bridge, and a responder answering web.vm
    netns.sh({ "ip", "-n", ns, "link", "add", "br-fc-st", "type", "bridge" })
    netns.sh({ "ip", "-n", ns, "addr", "add", "172.31.9.1/24", "dev", "br-fc-st" })
    local down = status(run)
    t.eq({ down.bridge.exists, down.bridge.is_bridge, down.bridge.up }, { true, true, false })
    netns.sh({ "ip", "-n", ns, "link", "set", "br-fc-st", "up" })
    local server = t.spawn({ t.bin(), "dns", "serve", env = t.env(home), cwd = home, stderr = "pipe" })
    t.wait_for(function()
      return banger.json.decode(t.banger({ "dns", "status", "--json" }, { home = home }).stdout).running
    end, 30000, "the responder")
    s, text = status(run)
    t.eq({ s.bridge.exists, s.bridge.is_bridge, s.bridge.up, s.bridge.addresses }, { true, true, true, { "172.31.9.1/24" } })
    t.eq(line(text, "bridge"), "br-fc-st up, 172.31.9.1/24")
    t.eq({ s.dns.running, s.dns.names }, { true, 1 })
    t.eq(line(text, "dns"), "running on 127.0.0.1:" .. dns_port .. ", 1 name")
    stop(server)
    for _, c in ipairs(sleepers) do
      c:kill(9)
      c:wait()
    end
  end)

  it("shows the root helper: none, the real one answering, and helpers of other releases", function()
    local home = t.tmpdir()
    local sock = open_dir() .. "/run/helper.sock"
    config(home, string.format('network = { mode = "off" }, helper = { socket = %q }', sock))
    local run = function(args) return t.banger(args, { home = home }) end
    local build = banger.sys.build()

    local s, text = status(run)
    t.eq({ s.helper.mode, s.helper.installed, s.helper.answering, s.helper.socket }, { "local-root", false, false, sock })
    t.contains(s.helper.error, "cannot reach the root helper at " .. sock)
    t.eq(s.helper.fix, banger.json.null, "root needs no helper")
    t.eq(line(text, "helper"), "not needed: banger runs as root; not installed")

    local helper = start_helper(sock, USER)
    s, text = status(run)
    t.eq({ s.helper.answering, s.helper.version, s.helper.commit, s.helper.same_build, s.helper.compatible },
      { true, build.version, build.commit, true, true })
    t.eq({ s.helper.pid, s.helper.protocol }, { helper:pid(), build.helper_protocol })
    t.eq(s.helper.fix, banger.json.null)
    t.contains(line(text, "helper"), "answering on " .. sock .. " (pid " .. helper:pid() .. ", banger " .. build.version
      .. ", commit " .. build.commit)
    t.contains(line(text, "helper"), ", protocol " .. build.helper_protocol .. "): this build")
    stop(helper)

    -- Helpers of other releases. Building a second banger version is the
    -- update spec's business; this stand-in speaks the same wire format
    -- (one JSON line each way) with the answer such a helper gives: `answer`
    -- is its ping result (without pid, filled in).
    local function other_helper(answer)
      local path = open_dir() .. "/other.sock"
      config(home, string.format('network = { mode = "off" }, helper = { socket = %q }', path))
      local child = t.spawn({ "python3", "-c", [[
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
answer = json.loads(sys.argv[2])
answer["pid"] = os.getpid()
while True:
    c, _ = s.accept()
    req = json.loads(c.makefile().readline())
    assert req["op"] == "ping", req
    c.sendall((json.dumps({"ok": answer}) + "\n").encode())
    c.close()
]], path, banger.json.encode(answer) })
      t.wait_for(function() return banger.fs.exists(path) end, 30000, "the stand-in's socket")
      local st, txt = status(run)
      child:kill(9)
      child:wait()
      return st, txt
    end

    -- an older release: no commit, no protocol in its answer
    s, text = other_helper({ version = "0.0.1", caller_uid = 0 })
    t.eq({ s.helper.answering, s.helper.version, s.helper.commit, s.helper.protocol, s.helper.same_build,
      s.helper.compatible, s.helper.fix },
      { true, "0.0.1", banger.json.null, banger.json.null, false, false, "sudo banger system install" })
    t.contains(line(text, "helper"), "banger 0.0.1, commit ?, protocol ?")
    t.contains(line(text, "helper"), "does not match this banger, run sudo banger system install")

    -- another build speaking this build's protocol: usable as it is
    s, text = other_helper({ version = "0.0.2", commit = "0123abcd", helper_protocol = build.helper_protocol,
      caller_uid = 0 })
    t.eq({ s.helper.same_build, s.helper.compatible, s.helper.fix }, { false, true, banger.json.null })
    t.contains(line(text, "helper"), "protocol " .. build.helper_protocol .. "): a different build, compatible")

    -- another protocol
    s, text = other_helper({ version = build.version, commit = build.commit, helper_protocol = build.helper_protocol + 1,
      caller_uid = 0 })
    t.eq({ s.helper.same_build, s.helper.compatible, s.helper.fix }, { true, false, "sudo banger system install" })
    t.contains(line(text, "helper"), "does not match this banger, run sudo banger system install")
  end)

  it("as a regular user: no helper, then the real one; an unreadable images directory is only that line's error", function()
    local home = open_dir()
    local sock = open_dir() .. "/run/helper.sock"
    config(home, string.format('network = { mode = "auto", bridge = "br-fc-none" }, helper = { socket = %q }', sock))
    t.env(home)
    sh({ "chown", "-R", USER .. ":" .. USER, home })
    local function run(args)
      local argv = { "setpriv", "--reuid=" .. USER, "--regid=" .. USER, "--clear-groups", t.bin() }
      for _, a in ipairs(args) do
        argv[#argv + 1] = a
      end
      argv.env, argv.cwd, argv.timeout_ms = t.env(home), home, 60000
      return banger.proc.run(argv)
    end
    local images = home .. "/.local/state/banger/images"
    t.write(images .. "/x.ext4", string.rep("e", 10000))
    sh({ "chown", "-R", USER .. ":" .. USER, home })
    sh({ "chmod", "000", images })

    local t0 = banger.sys.monotonic_ms()
    local s, text = status(run)
    local took = banger.sys.monotonic_ms() - t0
    t.eq(s.errors, { { part = "images", error = s.errors[1] and s.errors[1].error } })
    t.contains(s.errors[1].error, "Permission denied")
    t.eq(s.images, banger.json.null)
    t.eq(line(text, "images"), "error: " .. s.errors[1].error)
    for _, part in ipairs({ "helper", "dns", "bridge", "vms", "kernels", "snapshots", "cache", "doctor" }) do
      t.truthy(s[part] ~= banger.json.null, part .. " is printed")
    end
    t.eq({ s.kernels.count, s.vms.total, s.bridge.exists }, { 0, 0, false })
    t.eq({ s.helper.mode, s.helper.answering, s.helper.fix }, { "none", false, "sudo banger system install" })
    t.eq(line(text, "helper"), "not installed (sudo banger system install)")
    t.truthy(took < 10000, "two status runs took " .. took .. " ms")

    local helper = start_helper(sock, USER)
    s = status(run)
    t.eq({ s.helper.mode, s.helper.answering, s.helper.same_build, s.helper.compatible, s.helper.pid },
      { "helper", true, true, true, helper:pid() })
    stop(helper)
    sh({ "chmod", "0700", images })
  end)
end)
