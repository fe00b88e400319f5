-- banger image push against a real registry (Debian's docker-registry on
-- 127.0.0.1), then `image pull` of what was pushed under another HOME: the
-- two trees are compared as the kernel sees them (both images loop-mounted
-- read-only; tests/fixtures/tree-manifest.sh reads them with stat, getfattr,
-- getcap and sha256sum), never through banger's own ext4 reader.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()
local fixtures = t.source_dir() .. "/tests/fixtures"

local function run(argv, timeout_ms)
  argv.timeout_ms = timeout_ms or 120000
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stderr)
  return r
end

-- A registry for the duration of fn(addr, dir); stopped whatever happens.
local function with_registry(fn)
  local dir = t.tmpdir()
  local addr = run({ fixtures .. "/registry.sh", "start", dir }, 60000).stdout:gsub("%s+$", "")
  local ok, err = pcall(fn, addr, dir)
  banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
  if not ok then
    error(err, 0)
  end
end

-- The crafted source image (every kind of entry), registered in `home`.
local function crafted(home, name)
  local work = t.tmpdir()
  run({ fixtures .. "/make-push-tree.sh", work, work .. "/src.ext4" })
  local r = t.banger({ "image", "register", "--rootfs", work .. "/src.ext4", "--name", name, "--json" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return banger.json.decode(r.stdout)
end

-- The tree of an image file, loop-mounted read-only without replaying a
-- journal: { path = line, ... } plus the paths in order.
local function manifest(image)
  local mnt = t.tmpdir()
  run({ "mount", "-o", "ro,noload,loop", image, mnt })
  local ok, r = pcall(banger.proc.run, { fixtures .. "/tree-manifest.sh", mnt, timeout_ms = 120000 })
  run({ "umount", mnt })
  t.truthy(ok, r)
  t.eq(r.code, 0, r.stderr)
  local lines, order = {}, {}
  for line in r.stdout:gmatch("[^\n]+") do
    local path = line:match("^([^\t]+)")
    lines[path] = line
    order[#order + 1] = path
  end
  return lines, order
end

local function field(line, key)
  return line:match("\t" .. key .. "=([^\t]*)")
end

-- One line on stderr naming the failure, no traceback.
local function one_line_error(r, needle)
  t.eq(r.code, 1, r.stderr)
  local errs = {}
  for line in r.stderr:gmatch("[^\n]+") do
    if line:match("^banger: ") and not line:match("^banger: warning: ") then
      errs[#errs + 1] = line
    end
  end
  t.eq(#errs, 1, r.stderr)
  t.contains(errs[1], needle)
  t.not_contains(r.stderr, "traceback")
end

local function spools(home)
  local dir = home .. "/.cache/banger/push"
  return banger.fs.exists(dir) and banger.fs.list(dir) or {}
end

describe("image push", function()
  it("pushes an image's whole tree and `image pull` gives the same tree back (kernel's view)", function()
    with_registry(function(addr)
      local home = t.tmpdir()
      local src = crafted(home, "crafted")
      local ref = addr .. "/banger/pushed:v1"

      local d = t.banger({ "image", "push", "crafted", "--dry-run", "--json" }, { home = home, timeout_ms = 120000 })
      t.eq(d.code, 0, d.stderr)
      local dry = json_doc.conforms("image push", d.stdout)
      t.eq(dry.dry_run, true)
      t.eq(dry.manifest_digest, banger.json.null)
      t.eq(dry.skipped, { "/dev/sock" })
      t.contains(d.stderr, "left out /dev/sock: a socket cannot be stored in a layer")
      t.eq(spools(home), {}, "the dry run's spool is removed")

      local r = t.banger({ "image", "push", "crafted", ref, "--json" }, { home = home, timeout_ms = 120000 })
      t.eq(r.code, 0, r.stderr)
      local pushed = json_doc.conforms("image push", r.stdout)
      t.eq(pushed.ref, ref)
      t.eq(pushed.layer_uploaded, true)
      t.eq(pushed.dry_run, false)
      -- the dry run described exactly the layer that went out
      t.eq(pushed.layer_digest, dry.layer_digest)
      t.eq(pushed.diff_id, dry.diff_id)
      t.eq(pushed.size, dry.size)
      t.eq(spools(home), {}, "the push's spool is removed")

      -- The layer as the registry serves it, hashed by other tools.
      local blob = t.tmpdir() .. "/layer.tar.gz"
      run({ "curl", "-fsS", "-o", blob, "http://" .. addr .. "/v2/banger/pushed/blobs/" .. pushed.layer_digest })
      t.eq(banger.fs.stat(blob).size, dry.size)
      t.eq("sha256:" .. run({ "sha256sum", blob }).stdout:match("^(%x+)"), dry.layer_digest)
      t.eq("sha256:" .. run({ "sh", "-c", 'gzip -dc "$1" | sha256sum', "sh", blob }).stdout:match("^(%x+)"), dry.diff_id)
      -- The manifest and config as skopeo reads them.
      local raw = banger.json.decode(run({ "skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" .. ref }).stdout)
      t.eq(raw.mediaType, "application/vnd.oci.image.manifest.v1+json")
      t.eq(#raw.layers, 1)
      t.eq(raw.layers[1].mediaType, "application/vnd.oci.image.layer.v1.tar+gzip")
      t.eq(raw.layers[1].digest, pushed.layer_digest)
      local cfg = banger.json.decode(run({ "skopeo", "inspect", "--config", "--tls-verify=false", "docker://" .. ref }).stdout)
      t.eq(cfg.os, "linux")
      t.eq(cfg.architecture, "amd64")
      t.eq(cfg.rootfs.diff_ids, { dry.diff_id })

      -- Pushing again finds the layer there and makes the same manifest.
      local again = banger.json.decode(t.banger({ "image", "push", "crafted", addr .. "/banger/pushed:v2", "--json" },
        { home = home, timeout_ms = 120000 }).stdout)
      t.eq(again.layer_uploaded, false)
      t.eq(again.manifest_digest, pushed.manifest_digest)

      -- Pulled back by someone else.
      local other = t.tmpdir()
      local p = t.banger({ "image", "pull", ref, "--name", "back", "--json" }, { home = other, timeout_ms = 120000 })
      t.eq(p.code, 0, p.stderr)
      local row = banger.json.decode(p.stdout)
      t.eq(row.digest, pushed.manifest_digest)
      local fsck = banger.proc.run({ "e2fsck", "-fn", row.rootfs_path })
      t.eq(fsck.code, 0, "e2fsck -fn: " .. fsck.stdout .. fsck.stderr)

      local a, order = manifest(src.rootfs_path)
      local b = manifest(row.rootfs_path)
      t.truthy(#order >= 28, "the source has every case")
      -- the source holds what the comparison is about
      t.eq(field(a["/bin/ping"], "caps"), "cap_net_raw=ep")
      t.contains(field(a["/data/sub"], "xattrs"), "system.posix_acl_access=")
      t.eq(field(a["/dev/bigdev"], "dev"), "300:70000")
      t.eq(field(a["/shared/b"], "linkgroup"), "/links/c")
      t.contains(field(a["/data/hello"], "mtime"), ".123456789")
      t.contains(field(a["/data/sub/deeper/file"], "mtime"), "2100-06-01")
      t.contains(field(a["/data/empty"], "mtime"), "1960-01-01")
      -- Every path of the source comes back identical. The pull adds
      -- banger's boot files (agent, units: banger.golden.customize) under
      -- /etc and /usr, which the source does not have; the root gains one
      -- link per directory added to it, and nothing else changes.
      local added_top = {}
      for path in pairs(b) do
        if not a[path] then
          t.truthy(path:match("^/etc/") or path:match("^/usr/") or path == "/etc" or path == "/usr",
            "unexpected in the pulled image: " .. path)
          local top = path:match("^/[^/]+$")
          if top then
            added_top[#added_top + 1] = top
          end
        end
      end
      t.truthy(b["/usr/local/libexec/banger/banger-agent"], "the pull made the image bootable")
      t.eq(field(a["/dev/sock"], "type"), "socket")
      t.falsy(b["/dev/sock"], "the socket is not in the layer")
      for _, path in ipairs(order) do
        t.truthy(b[path] or path == "/dev/sock", "missing after the round trip: " .. path)
        if path == "/dev/sock" then
          -- left out, as the push said
        elseif path == "/" then
          local nlink = tonumber(field(a[path], "nlink"))
          t.eq((b[path]:gsub("\tnlink=%d+", "")), (a[path]:gsub("\tnlink=%d+", "")))
          t.eq(tonumber(field(b[path], "nlink")), nlink + #added_top)
        else
          t.eq(b[path], a[path])
        end
      end
    end)
  end)

  it("round-trips a pulled image of the pull spec's fixture (whiteouts, opaque directory, setuid, owners)", function()
    with_registry(function(addr, dir)
      run({ fixtures .. "/make-oci-image.sh", dir .. "/work", addr, "banger/test" })
      local function pull(home, ref, name)
        local r = t.banger({ "image", "pull", ref, "--name", name, "--json" }, { home = home, timeout_ms = 120000 })
        t.eq(r.code, 0, r.stderr)
        return banger.json.decode(r.stdout)
      end
      local home = t.tmpdir()
      local first = pull(home, addr .. "/banger/test:v1", "first")
      local r = t.banger({ "image", "push", "first", addr .. "/banger/again:v1", "--json" }, { home = home, timeout_ms = 120000 })
      t.eq(r.code, 0, r.stderr)
      local second = pull(t.tmpdir(), addr .. "/banger/again:v1", "second")
      t.eq(banger.proc.run({ "e2fsck", "-fn", second.rootfs_path }).code, 0, "e2fsck clean")
      local a, order = manifest(first.rootfs_path)
      local b, order_b = manifest(second.rootfs_path)
      t.eq(order_b, order, "the same paths")
      t.eq(field(a["/usr/bin/fakesu"], "mode"), "4755")
      t.eq(field(a["/home/user/file2"], "owner"), "1001:1002")
      t.falsy(a["/etc/gone"], "the whiteout applied")
      -- The second pull writes banger's boot files again (same content, new
      -- mtime); every other property of every path is the first image's.
      local rewritten = { "/usr/local/libexec/banger/", "/etc/systemd/system/", "/etc/systemd/system-generators/",
        "/etc/tmpfiles.d/" }
      for _, path in ipairs(order) do
        local boot = false
        for _, prefix in ipairs(rewritten) do
          boot = boot or path:sub(1, #prefix) == prefix
        end
        if boot then
          t.eq((b[path]:gsub("\tmtime=[^\t]*", "")), (a[path]:gsub("\tmtime=[^\t]*", "")))
        else
          t.eq(b[path], a[path])
        end
      end
    end)
  end)

  it("takes an image captured from a provision step by name", function()
    local home = t.tmpdir()
    crafted(home, "crafted")
    -- what `vm run` does after a banger.lua provision step: a stopped VM's
    -- qcow2 root overlay flattened into a new image (banger.images.capture)
    local script = t.tmpdir() .. "/capture.lua"
    t.write(script, [[
      local base = banger.images.require("crafted")
      local row = { id = "vmcapture", name = "vmcapture", image = "crafted" }
      local dir = banger.vms.dir(row)
      banger.fs.mkdir(dir, 448, true)
      local r = banger.proc.run({ "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base.rootfs_path,
        dir .. "/root.qcow2" })
      assert(r.code == 0, r.stderr)
      banger.images.capture(row, { name = "p-proj-0123456789ab", source_ref = "provisioned:crafted" })
    ]])
    local c = t.banger({ "run", script }, { home = home, timeout_ms = 120000 })
    t.eq(c.code, 0, c.stderr)
    local function dry(name)
      local r = t.banger({ "image", "push", name, "--dry-run", "--json" }, { home = home, timeout_ms = 120000 })
      t.eq(r.code, 0, r.stderr)
      return banger.json.decode(r.stdout)
    end
    -- the same tree gives the same layer, byte for byte
    local base, provisioned = dry("crafted"), dry("p-proj-0123456789ab")
    t.eq(provisioned.image, "p-proj-0123456789ab")
    t.eq(provisioned.layer_digest, base.layer_digest)
    t.eq(provisioned.diff_id, base.diff_id)
  end)

  it("a regular user pushes (dry run) an image of theirs holding root's files: the same layer", function()
    local home = t.tmpdir()
    crafted(home, "crafted")
    local as_root = banger.json.decode(t.banger({ "image", "push", "crafted", "--dry-run", "--json" },
      { home = home, timeout_ms = 120000 }).stdout)
    run({ "chown", "-R", "65534:65534", home })
    local argv = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "image", "push", "crafted",
      "--dry-run", "--json" }
    argv.env = t.env(home)
    argv.cwd = home
    local r = run(argv)
    local mine = banger.json.decode(r.stdout)
    t.eq(mine.layer_digest, as_root.layer_digest)
    t.eq(mine.diff_id, as_root.diff_id)
    t.eq(spools(home), {})
  end)

  it("Ctrl-C during the upload ends the push at once: exit 130, no spool left", function()
    local home = t.tmpdir()
    crafted(home, "crafted")
    -- a registry that takes the first bytes of the layer and then stalls
    local dir = t.tmpdir()
    local server = t.spawn({ fixtures .. "/stalling-registry.py", dir, stdout = { file = dir .. "/port", append = false } })
    local ok, err = pcall(function()
      local port = t.wait_for(function()
        return (t.read(dir .. "/port") or ""):match("^(%d+)\n")
      end, 30000, "the stalling registry's port")
      local errfile = dir .. "/push.err"
      local push = t.spawn({ t.bin(), "image", "push", "crafted", "127.0.0.1:" .. port .. "/a/b:c", env = t.env(home),
        cwd = home, stderr = { file = errfile, append = false } })
      t.wait_for(function()
        return banger.fs.exists(dir .. "/put-started")
      end, 60000, "the layer upload to start")
      t.eq(#spools(home), 1, "the spool exists while it uploads")
      local start = banger.sys.monotonic_ms()
      push:kill(2)
      local st = push:wait(10000)
      local ms = banger.sys.monotonic_ms() - start
      t.eq({ st.exited, st.code }, { true, 130 }, t.read(errfile))
      t.truthy(ms < 1000, "the push took " .. ms .. " ms to stop")
      t.contains(t.read(errfile), "banger: interrupted")
      t.eq(spools(home), {}, "the spool is removed")
    end)
    server:kill(15)
    server:wait(10000)
    if not ok then
      error(err, 0)
    end
  end)

  it("fails in one line: unknown image, bad reference, digest reference, no reference, registry unreachable", function()
    local home = t.tmpdir()
    crafted(home, "crafted")
    local function push(args)
      return t.banger(args, { home = home, timeout_ms = 120000 })
    end
    one_line_error(push({ "image", "push", "nosuch", "127.0.0.1:5000/a/b:c" }), "no image named 'nosuch'")
    one_line_error(push({ "image", "push", "crafted", "127.0.0.1:5000/Bad Name:tag" }), "invalid image reference")
    one_line_error(push({ "image", "push", "crafted", "127.0.0.1:5000/a/b@sha256:" .. string.rep("a", 64) }),
      "needs a tag")
    local usage = push({ "image", "push", "crafted" })
    t.eq(usage.code, 2, usage.stderr)
    t.contains(usage.stderr, "needs a reference")
    -- A port where nothing listens: a registry that is down.
    local port = run({ "python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" })
      .stdout:gsub("%s+$", "")
    local down = push({ "image", "push", "crafted", "127.0.0.1:" .. port .. "/a/b:c" })
    one_line_error(down, "127.0.0.1:" .. port)
    t.contains(down.stderr, "onnect")
    t.eq(spools(home), {}, "no spool left behind")
  end)
end)
