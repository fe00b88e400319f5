-- The image store through the CLI: import from tarballs, register, list,
-- show, rm; failures publish nothing.
local function tarball(dir, files, out)
  for path, content in pairs(files) do
    t.write(dir .. "/" .. path, content)
  end
  local r = banger.proc.run({ "tar", "-C", dir, "--owner=0", "--group=0", "--numeric-owner", "-czf", out, "." })
  t.eq(r.code, 0, r.stderr)
  return out
end

describe("image import", function()
  it("builds, lists, shows and removes an image", function()
    local home = t.tmpdir()
    local l1 = tarball(t.tmpdir(), { ["etc/os-release"] = "ID=test\n", ["bin/tool"] = "x" }, home .. "/l1.tgz")
    local l2 = tarball(t.tmpdir(), { ["etc/.wh.os-release"] = "", ["etc/motd"] = "hello\n" }, home .. "/l2.tgz")
    local r = t.banger({ "image", "import", "--name", "img1", l1, l2, "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local row = banger.json.decode(r.stdout)
    t.eq(row.name, "img1")
    local fsys <close> = banger.ext4.open(row.rootfs_path)
    t.eq(fsys:read("/etc/motd"), "hello\n")
    t.falsy(fsys:exists("/etc/os-release"), "the whiteout removed it")
    t.eq(fsys:stat("/bin/tool").uid, 0)
    local list = banger.json.decode(t.banger({ "image", "list", "--json" }, { home = home }).stdout)
    t.eq(#list, 1)
    t.eq(banger.json.decode(t.banger({ "image", "show", "img1", "--json" }, { home = home }).stdout).name, "img1")
    t.eq(t.banger({ "image", "import", "--name", "img1", l1 }, { home = home }).code, 1, "names are unique")
    t.eq(t.banger({ "image", "rm", "img1" }, { home = home }).code, 0)
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("a hostile layer fails the import and leaves no image or file", function()
    local home = t.tmpdir()
    local src = t.tmpdir()
    banger.fs.symlink("../../../../etc", src .. "/evil")
    local bad = home .. "/bad.tar"
    t.eq(banger.proc.run({ "tar", "-C", src, "-cf", bad, "." }).code, 0)
    local r = t.banger({ "image", "import", "--name", "evil", bad }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "layer " .. bad .. ": entry ./evil: symlink to ../../../../etc escapes the image root")
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("refuses a negative or absurd --headroom before reading any layer", function()
    local home = t.tmpdir()
    local l1 = tarball(t.tmpdir(), { ["etc/os-release"] = "ID=test\n" }, home .. "/l1.tgz")
    for _, pct in ipairs({ "-5", "1001" }) do
      local r = t.banger({ "image", "import", "--name", "x", "--headroom", pct, l1 }, { home = home })
      t.eq(r.code, 2, r.stderr)
      t.contains(r.stderr, "--headroom must be a whole percentage from 0 to 1000, got " .. pct)
      t.not_contains(r.stderr, "layer 1/1")
    end
    local e = t.raises(function() banger.images.import_layers({ l1 }, { name = "x", headroom_pct = -5 }) end, "EINVAL")
    t.contains(e.message, "headroom must be")
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    local r = t.banger({ "image", "import", "--name", "x", "--headroom", "0", l1, "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
  end)

  it("refuses an ext4 file, or layers without a single file, and registers nothing", function()
    local home = t.tmpdir()
    local img = home .. "/some.ext4"
    t.eq(banger.proc.run({ "mkfs.ext4", "-q", "-F", img, "64M" }).code, 0)
    local r = t.banger({ "image", "import", "--name", "x", "--", img }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, img .. " is an ext4 filesystem image, not a tar archive")
    t.contains(r.stderr, "banger image register --rootfs " .. img)
    local empty = home .. "/empty.tar"
    t.eq(banger.proc.run({ "tar", "-cf", empty, "-T", "/dev/null" }).code, 0)
    r = t.banger({ "image", "import", "--name", "x", empty }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "the layers hold no files")
    t.eq(t.banger({ "image", "list", "--json" }, { home = home }).stdout, "[]\n")
    t.eq(banger.fs.list(home .. "/.local/state/banger/images"), {})
  end)

  it("register copies the file sparse, through a link to it, and publishes it whole", function()
    local home = t.tmpdir()
    local img = home .. "/src.ext4"
    t.eq(banger.proc.run({ "mkfs.ext4", "-q", "-F", img, "256M" }).code, 0)
    local link = home .. "/link.ext4"
    banger.fs.symlink(img, link)
    local r = t.banger({ "image", "register", "--rootfs", link, "--name", "reg" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local dir = home .. "/.local/state/banger/images"
    t.eq(banger.fs.list(dir), { "reg.ext4" }, "no temporary is left")
    local st = banger.fs.lstat(dir .. "/reg.ext4")
    t.eq(st.type, "file")
    t.eq(st.size, 256 * 1024 * 1024)
    t.truthy(st.blocks_bytes < 64 * 1024 * 1024, "holes stay holes: " .. st.blocks_bytes)
    t.eq(banger.proc.run({ "cmp", img, dir .. "/reg.ext4" }).code, 0, "the copy is the file")
  end)

  it("fs.publish moves a finished file into place and refuses a link", function()
    local dir = t.tmpdir()
    local fs = require("banger.native.fs")
    t.write(dir .. "/new.tmp", "new")
    t.write(dir .. "/img", "old")
    t.eq(fs.publish(dir .. "/new.tmp", dir .. "/img"), true)
    t.eq(t.read(dir .. "/img"), "new")
    t.falsy(banger.fs.exists(dir .. "/new.tmp"))
    t.write(dir .. "/secret", "s")
    banger.fs.symlink(dir .. "/secret", dir .. "/link")
    local ok, msg, code = fs.publish(dir .. "/link", dir .. "/img")
    t.eq(ok, nil)
    t.eq(code, "ELOOP", msg)
    t.eq(t.read(dir .. "/img"), "new")
  end)

  it("rejects bad names and missing flags", function()
    local home = t.tmpdir()
    local r = t.banger({ "image", "import", "--name", "../x", "/dev/null" }, { home = home })
    t.eq(r.code, 1)
    t.contains(r.stderr, "invalid image name")
    t.eq(t.banger({ "image", "import", "/dev/null" }, { home = home }).code, 2)
  end)
end)

describe("image build debian (banger.debian_image)", function()
  -- A small root filesystem tar stands in for mmdebstrap's output (--tar,
  -- as the e2e spec passes the cached Debian one); what is tested is the
  -- build around it: the golden additions, registration, default, replace.
  local function rootfs(home)
    return tarball(t.tmpdir(), { ["etc/os-release"] = "ID=debian\n", ["sbin/init"] = "#!/bin/sh\n" },
      home .. "/rootfs.tgz")
  end

  it("the recipe builds from --tar, adds the agent, registers it as the default; --replace rebuilds", function()
    local home = t.tmpdir()
    local tar = rootfs(home)
    local r = t.banger({ "image", "build", "debian", "--tar", tar, "--json" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "] ext4: writing " .. tar)
    local row = banger.json.decode(r.stdout)
    t.eq(row.name, "debian-12")
    t.eq(row.is_default, true)
    t.eq(row.kernel, "debian-cloud")
    t.eq(row.source_ref, "mmdebstrap:bookworm")
    do
      local fsys <close> = banger.ext4.open(row.rootfs_path)
      t.eq(fsys:stat("/usr/local/libexec/banger/banger-agent").mode, tonumber("755", 8))
      t.eq(fsys:read("/etc/os-release"), "ID=debian\n")
    end
    t.eq(t.banger({ "image", "build", "debian", "--tar", tar }, { home = home }).code, 1, "the name is taken")
    local again = t.banger({ "image", "build", "debian", "--tar", tar, "--replace", "--json" }, { home = home })
    t.eq(again.code, 0, again.stderr)
    t.eq(#banger.json.decode(t.banger({ "image", "list", "--json" }, { home = home }).stdout), 1)

    -- an image a snapshot stands on is refused before anything is built
    -- (no --tar: mmdebstrap would run for minutes first)
    local db = home .. "/.local/state/banger/banger.db"
    local ins = banger.proc.run({ "sqlite3", db, "INSERT INTO snapshots (id, name, kind, state, source_vm, source_name, "
      .. "driver, image, kernel, vcpus, memory_mib, disk_mib, work_disk_mib, created_at) VALUES ('s1', 'warm-x', "
      .. "'warm', 'ready', 'v1', 'box', 'qemu', 'debian-12', 'debian-cloud', 1, 256, 1024, 1024, 'now')" })
    t.eq(ins.code, 0, ins.stderr)
    local busy = t.banger({ "image", "build", "debian", "--replace" }, { home = home })
    t.eq(busy.code, 1)
    t.eq(busy.stderr, "banger: image 'debian-12' is used by snapshot 'warm-x' (delete it first: "
      .. "banger snapshot delete warm-x)\n")
  end)

  it("build() takes the same options from Lua; default=false leaves the default alone", function()
    local home = t.tmpdir()
    local tar = rootfs(home)
    local script = home .. "/b.lua"
    t.write(script, [[
local stages = {}
local row = banger.debian_image.build({ name = "deb-b", suite = "trixie", kernel = "k9", tar = arg[1], default = false,
  stage = function(name) stages[#stages + 1] = name end })
print(banger.json.encode({ row = row, stages = stages, default = banger.images.default() ~= nil,
  packages = banger.debian_image.packages({ "vim" }) }))
]])
    t.write(home .. "/.config/banger/config.lua",
      'return { network = { mode = "off" }, image = { packages = { "htop" } } }\n')
    local r = t.banger({ "run", script, tar }, { home = home })
    t.eq(r.code, 0, r.stderr)
    local out = banger.json.decode(r.stdout)
    t.eq(out.row.name, "deb-b")
    t.eq(out.row.kernel, "k9")
    t.eq(out.row.source_ref, "mmdebstrap:trixie")
    t.eq(out.row.is_default, 0)
    t.eq(out.default, false)
    t.eq(out.stages, { "ext4", "done" })
    t.eq(out.packages, { "systemd-sysv", "openssh-server", "ca-certificates", "git", "curl", "less", "iproute2",
      "htop", "vim" })
  end)
end)

describe("images.make_bootable", function()
  local images = require("banger.images")
  local X = tonumber("755", 8)

  -- A fresh image whose /sbin/init is reached the way `build` lays it out.
  local function bootable(build)
    local img <close> = banger.ext4.create(t.tmpdir() .. "/root.ext4", "64MiB")
    build(img)
    return images.make_bootable(img)
  end

  it("keeps the image's own init when /sbin is a merged-/usr symlink (Debian 12 with systemd-sysv)", function()
    local init = bootable(function(img)
      img:mkdir("/usr/sbin", { parents = true })
      img:mkdir("/usr/lib/systemd", { parents = true })
      img:write("/usr/lib/systemd/systemd", "\127ELF", { mode = X })
      img:symlink("usr/sbin", "/sbin")
      img:symlink("../lib/systemd/systemd", "/usr/sbin/init")
    end)
    t.eq(init, nil, "systemd stays the init")
  end)

  it("an absolute link, '..' at the root and a plain file are followed too", function()
    t.eq(bootable(function(img)
      img:mkdir("/usr/bin", { parents = true })
      img:write("/usr/bin/tini", "x", { mode = X })
      img:mkdir("/sbin")
      img:symlink("/../../usr/bin/tini", "/sbin/init")
    end), nil)
  end)

  it("chooses banger-init for a dangling, looping or non-executable /sbin/init", function()
    local banger_init = "/usr/local/libexec/banger/banger-init"
    t.eq(bootable(function(img)
      img:symlink("usr/sbin", "/sbin")
      img:mkdir("/usr/sbin", { parents = true })
      img:symlink("../lib/systemd/systemd", "/usr/sbin/init")
    end), banger_init, "dangling")
    t.eq(bootable(function(img)
      img:symlink("/sbin", "/sbin2")
      img:symlink("/sbin2", "/sbin")
    end), banger_init, "a loop")
    t.eq(bootable(function(img)
      img:mkdir("/sbin")
      img:write("/sbin/init", "#!/bin/sh\n", { mode = tonumber("644", 8) })
    end), banger_init, "not executable")
  end)
end)
