-- banger image pull against a real registry (Debian's docker-registry on
-- 127.0.0.1) holding an image built by the test, also as a non-root user.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()
local fixtures = t.source_dir() .. "/tests/fixtures"

local function registry()
  local dir = t.tmpdir()
  local r = banger.proc.run({ fixtures .. "/registry.sh", "start", dir, timeout_ms = 60000 })
  t.eq(r.code, 0, r.stderr)
  local addr = r.stdout:gsub("%s+$", "")
  local img = banger.proc.run({ fixtures .. "/make-oci-image.sh", dir .. "/work", addr, "banger/test", timeout_ms = 120000 })
  t.eq(img.code, 0, img.stderr)
  local layers = {}
  for digest in img.stdout:gmatch("layer=sha256:(%x+)") do
    layers[#layers + 1] = digest
  end
  return dir, addr, layers
end

describe("image pull", function()
  it("pulls layers into an ext4 image with whiteouts, owners and modes, and prunes the cache", function()
    local dir, addr = registry()
    local ok, err = pcall(function()
      local home = t.tmpdir()
      local r = t.banger({ "image", "pull", addr .. "/banger/test:v1", "--name", "pulled", "--json" },
        { home = home, timeout_ms = 120000 })
      t.eq(r.code, 0, r.stderr)
      local row = json_doc.conforms("image pull", r.stdout)
      t.truthy(row.digest:match("^sha256:%x+$"))
      t.eq(banger.proc.run({ "e2fsck", "-fn", row.rootfs_path }).code, 0, "e2fsck clean")
      -- what the fixture's layers hold, as seen inside the image
      local fsys <close> = banger.ext4.open(row.rootfs_path)
      local owners = {}
      local function walk(p)
        for _, n in ipairs(fsys:list(p)) do
          local child = (p == "/" and "" or p) .. "/" .. n
          local st = fsys:stat(child)
          owners[st.uid] = true
          if st.type == "directory" then
            walk(child)
          end
        end
      end
      walk("/")
      local count = 0
      for _ in pairs(owners) do
        count = count + 1
      end
      t.truthy(count >= 3, "files owned by several uids")
      local dry = banger.json.decode(t.banger({ "image", "cache", "prune", "--dry-run", "--json" }, { home = home }).stdout)
      t.truthy(dry.blobs > 0)
      local real = banger.json.decode(t.banger({ "image", "cache", "prune", "--json" }, { home = home }).stdout)
      t.eq(real.blobs, dry.blobs)
      t.eq(banger.json.decode(t.banger({ "image", "cache", "prune", "--json", "--dry-run" }, { home = home }).stdout).blobs, 0)
      -- a missing image fails cleanly and registers nothing
      local miss = t.banger({ "image", "pull", addr .. "/banger/nope:v1" }, { home = home, timeout_ms = 60000 })
      t.eq(miss.code, 1)
      t.eq(#banger.json.decode(t.banger({ "image", "list", "--json" }, { home = home }).stdout), 1)
    end)
    banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
    if not ok then
      error(err, 0)
    end
  end)

  it("a layer that does not match its digest fails the pull: no image, no file, nothing cached", function()
    local dir, addr, layers = registry()
    local ok, err = pcall(function()
      -- The registry serves what is in its storage without checking. The
      -- flipped byte is the gzip header's timestamp, so the layer still
      -- unpacks cleanly while it streams in: only its digest gives it away.
      local data = dir .. "/storage/docker/registry/v2/blobs/sha256/" .. layers[2]:sub(1, 2) .. "/" .. layers[2] .. "/data"
      local r = banger.proc.run({ "sh", "-c", "printf '\\001' | dd of=\"$1\" bs=1 seek=5 conv=notrunc status=none", "sh", data })
      t.eq(r.code, 0, r.stderr)
      local home = t.tmpdir()
      local pull = t.banger({ "image", "pull", addr .. "/banger/test:v1", "--name", "lied" }, { home = home, timeout_ms = 120000 })
      t.eq(pull.code, 1)
      t.contains(pull.stderr, layers[2])
      t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
      t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
      local cached = banger.fs.list(home .. "/.cache/banger/oci/blobs/sha256")
      for _, name in ipairs(cached) do
        t.truthy(name ~= layers[2] and not name:match("^%.tmp"), "unexpected in the cache: " .. name)
      end
    end)
    banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
    if not ok then
      error(err, 0)
    end
  end)

  it("a non-root user pulls an image whose files stay root-owned", function()
    local dir, addr = registry()
    local ok, err = pcall(function()
      local home = t.tmpdir()
      local argv = { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.bin(), "image", "pull",
        addr .. "/banger/test:v1", "--name", "mine", "--json" }
      argv.env = t.env(home)
      argv.cwd = home
      argv.timeout_ms = 120000
      banger.proc.run({ "chown", "-R", "65534:65534", home })
      local r = banger.proc.run(argv)
      t.eq(r.code, 0, r.stderr)
      local row = banger.json.decode(r.stdout)
      t.eq(banger.fs.stat(row.rootfs_path).uid, 65534, "the image file is the user's")
      local fsys <close> = banger.ext4.open(row.rootfs_path)
      t.eq(fsys:stat("/").uid, 0)
      t.eq(fsys:stat("/etc").uid, 0, "files inside stay root's")
    end)
    banger.proc.run({ fixtures .. "/registry.sh", "stop", dir })
    if not ok then
      error(err, 0)
    end
  end)
end)
