-- Filesystems fill their disks: banger's initramfs grows the root and work
-- filesystems online (banger-agent --grow-fs, EXT4_IOC_RESIZE_FS) at every
-- boot, on Debian's 6.1 cloud kernel under QEMU. Each grown filesystem is
-- then checked by e2fsck -fn with the VM stopped.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()

local MiB, GiB = 1024 * 1024, 1024 * 1024 * 1024

local function sh(argv)
  argv.timeout_ms = argv.timeout_ms or 120000
  local r = banger.proc.run(argv)
  t.eq(r.code, 0, table.concat(argv, " ") .. ": " .. r.stdout .. r.stderr)
  return r.stdout
end

-- Size in bytes of the filesystems mounted at / and /root, as df shows them.
local function df(home, name)
  local r = t.banger({ "vm", "exec", name, "--", "df", "-k", "/", "/root" }, { home = home })
  t.eq(r.code, 0, r.stderr)
  local sizes = {}
  for kib, mount in r.stdout:gmatch("\n%S+%s+(%d+)%s+%d+%s+%d+%s+%d+%%%s+(%S+)") do
    sizes[mount] = tonumber(kib) * 1024
  end
  return sizes, r.stdout
end

-- df shows the size minus ext4's own metadata (inode tables, journal):
-- about 3 % of a few GiB, up to 13 % of a small filesystem made with many
-- inodes. The exact size is checked on the stopped disk (fills).
local function near(bytes, disk, what)
  t.truthy(bytes and bytes <= disk and bytes >= disk * 0.85,
    string.format("%s: df shows %s bytes for a %d byte disk", what, tostring(bytes), disk))
end

-- e2fsck finds nothing wrong, and the filesystem is exactly the disk's size.
local function fills(path, disk)
  local r = banger.proc.run({ "e2fsck", "-fn", path, timeout_ms = 300000 })
  t.eq(r.code, 0, "e2fsck -fn " .. path .. ": " .. r.stdout .. r.stderr)
  local h = sh({ "dumpe2fs", "-h", path })
  local blocks, size = h:match("\nBlock count:%s+(%d+)"), h:match("\nBlock size:%s+(%d+)")
  t.eq(tonumber(blocks) * tonumber(size), disk, path .. ": filesystem size")
end

describe("filesystems grow to their disks at boot", function()
  it("root and work disks on create, and a work disk grown later at the next start", function()
    local home = e2e.home()
    local c = t.banger({ "vm", "create", "g1", "--image", "tiny", "--memory", "256MiB", "--disk", "1GiB",
      "--work-disk", "256MiB" }, { home = home, timeout_ms = 240000 })
    t.eq(c.code, 0, c.stderr)
    local dir = e2e.vms(home).g1.dir
    local console = dir .. "/console.log"
    local log = t.read(console)
    -- The tiny image is a 64 MiB filesystem; the work disk is made at its size.
    t.truthy(log:match("banger%-init: grew /dev/vda from 64 MiB to 1%.0 GiB in %d+ ms"), log)
    t.contains(log, "banger-init: /dev/vdb: the filesystem (256 MiB) already fills the disk")
    local sizes, out = df(home, "g1")
    near(sizes["/"], 1 * GiB, "/ " .. out)
    near(sizes["/root"], 256 * MiB, "/root " .. out)
    t.eq(t.banger({ "vm", "exec", "g1", "--", "sh", "-c", "echo kept > /root/note" }, { home = home }).code, 0)
    t.eq(t.banger({ "vm", "stop", "g1" }, { home = home, timeout_ms = 60000 }).code, 0)

    -- The root disk is a qcow2 overlay: e2fsck reads it flattened.
    local flat = t.tmpdir() .. "/root.raw"
    sh({ "qemu-img", "convert", "-O", "raw", dir .. "/root.qcow2", flat })
    fills(flat, 1 * GiB)
    banger.fs.remove(flat)
    fills(dir .. "/work.ext4", 256 * MiB)

    -- What `vm set --work-disk` does to the file while the VM is stopped.
    sh({ "truncate", "-s", "1G", dir .. "/work.ext4" })
    local before = #t.read(console)
    local s = t.banger({ "vm", "start", "g1" }, { home = home, timeout_ms = 240000 })
    t.eq(s.code, 0, s.stderr)
    log = t.read(console):sub(before + 1)
    t.truthy(log:match("banger%-init: grew /dev/vdb from 256 MiB to 1%.0 GiB in %d+ ms"), log)
    t.contains(log, "banger-init: /dev/vda: the filesystem (1.0 GiB) already fills the disk")
    sizes, out = df(home, "g1")
    near(sizes["/root"], 1 * GiB, "/root " .. out)
    t.eq(t.banger({ "vm", "exec", "g1", "--", "cat", "/root/note" }, { home = home }).stdout, "kept\n")
    t.eq(t.banger({ "vm", "stop", "g1" }, { home = home, timeout_ms = 60000 }).code, 0)
    fills(dir .. "/work.ext4", 1 * GiB)
    t.eq(t.banger({ "vm", "delete", "g1" }, { home = home }).code, 0)
  end)

  it("filesystems banger did not make: ext3 with 1 KiB blocks, ext4 without a resize inode", function()
    local home = e2e.home()
    t.eq(t.banger({ "vm", "create", "g2", "--image", "tiny", "--memory", "256MiB", "--no-start" },
      { home = home }).code, 0)
    local dir = e2e.vms(home).g2.dir
    local console = dir .. "/console.log"
    -- 20 GiB needs more group descriptor blocks than a filesystem without a
    -- resize inode has: the kernel converts it to meta_bg as it grows.
    for _, case in ipairs({
      { mkfs = { "mkfs.ext3", "-F", "-q", "-b", "1024" }, to = "1G", bytes = 1 * GiB, shown = "1.0 GiB" },
      { mkfs = { "mkfs.ext4", "-F", "-q", "-b", "4096", "-O", "^resize_inode" }, to = "20G", bytes = 20 * GiB, shown = "20.0 GiB" },
    }) do
      local work = dir .. "/work.ext4"
      banger.fs.remove(work)
      sh({ "truncate", "-s", "64M", work })
      local argv = { table.unpack(case.mkfs) }
      argv[#argv + 1] = work
      sh(argv)
      sh({ "truncate", "-s", case.to, work })
      local before = banger.fs.exists(console) and #t.read(console) or 0
      local s = t.banger({ "vm", "start", "g2" }, { home = home, timeout_ms = 240000 })
      t.eq(s.code, 0, s.stderr)
      local log = t.read(console):sub(before + 1)
      t.truthy(log:match("banger%-init: grew /dev/vdb from 64 MiB to " .. case.shown:gsub("%.", "%%.") .. " in %d+ ms"),
        case.mkfs[1] .. ": " .. log)
      local sizes, out = df(home, "g2")
      near(sizes["/root"], case.bytes, case.mkfs[1] .. " /root " .. out)
      t.eq(t.banger({ "vm", "stop", "g2" }, { home = home, timeout_ms = 60000 }).code, 0)
      fills(work, case.bytes)
    end
    t.eq(t.banger({ "vm", "delete", "g2" }, { home = home }).code, 0)
  end)

  it("a root disk smaller than the image is refused before anything is made", function()
    local home = e2e.home()
    -- The tiny image's file, 512 MiB long: an image larger than the
    -- smallest disk vm create takes.
    local big = home .. "/big.ext4"
    sh({ "cp", "--sparse=always", home .. "/tiny.ext4", big })
    sh({ "truncate", "-s", "512M", big })
    local reg = t.banger({ "image", "register", "--rootfs", big, "--name", "big", "--kernel", "debian-cloud" },
      { home = home })
    t.eq(reg.code, 0, reg.stderr)
    local c = t.banger({ "vm", "create", "g3", "--image", "big", "--disk", "256MiB" }, { home = home })
    t.eq(c.code, 2)
    t.contains(c.stderr, "the root disk (256.0 MiB) is smaller than image 'big' (512.0 MiB): give --disk 512MiB or more")
    t.eq(e2e.vms(home).g3, nil)
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
  end)
end)
