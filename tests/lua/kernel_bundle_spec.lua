-- Kernel bundles through the real CLI: `kernel export` (the tar's contents
-- read back with tar(1) and zstd(1), the sha256 and the catalog entry) and
-- `kernel pull` of bundles from file:// catalogs, hostile ones included: each
-- is refused and leaves nothing in the kernels directory. The HTTP pull and
-- a boot of a pulled bundle are in e2e_kernel_pull_spec.lua.
local arch = banger.sys.uname().machine

local function kernels_dir(home)
  return home .. "/.local/state/banger/kernels"
end

local function listing(dir)
  return banger.fs.exists(dir) and banger.fs.list(dir) or {}
end

-- A kernel in `home`'s catalog made of small files (export and pull never
-- boot it): what `kernel import` writes, with a vmlinux of random bytes.
local function fake_kernel(home, name, opts)
  opts = opts or {}
  local dir = kernels_dir(home) .. "/" .. name
  local vmlinux = string.rep("\127ELF " .. name, 1000)
  t.write(dir .. "/vmlinux", vmlinux)
  t.write(dir .. "/initrd.img", "070701 an initramfs")
  t.write(dir .. "/manifest.json", banger.json.encode({
    name = name, distro = "test", arch = opts.arch or arch, version = "6.1.0-test",
    sha256 = opts.sha256 or banger.sys.sha256(vmlinux), source = "/dev/null", source_kind = "file",
    modules = { "virtio_blk" }, vmlinux_bytes = #vmlinux, imported_at = "2026-01-01T00:00:00Z",
  }))
  return dir
end

local function export(home, name, out)
  return t.banger({ "kernel", "export", name, "--output", out, "--level", "3", "--json" }, { home = home })
end

-- One ustar header block (POSIX.1-1988) for `name`: type "0" file, "2"
-- symlink, "1" hardlink; written here so a test can make any entry a
-- careful tool would refuse to write.
local function tar_header(name, size, kind, link)
  local function octal(n, width)
    return string.format("%0" .. (width - 1) .. "o", n) .. "\0"
  end
  local function field(s, width)
    return s .. string.rep("\0", width - #s)
  end
  local h = field(name, 100) .. octal(420, 8) .. octal(0, 8) .. octal(0, 8) .. octal(size, 12) .. octal(0, 12)
    .. "        " .. kind .. field(link or "", 100) .. "ustar\0" .. "00" .. field("root", 32) .. field("root", 32)
    .. octal(0, 8) .. octal(0, 8) .. field("", 155)
  h = field(h, 512)
  local sum = 0
  for i = 1, #h do
    sum = sum + h:byte(i)
  end
  return h:sub(1, 148) .. string.format("%06o\0 ", sum) .. h:sub(157)
end

-- A tar of `entries` ({ name=, data=, kind=, link= }), zstd-compressed by zstd(1).
local function bundle(path, entries)
  local parts = {}
  for _, e in ipairs(entries) do
    local data = e.data or ""
    parts[#parts + 1] = tar_header(e.name, #data, e.kind or "0", e.link) .. data
      .. string.rep("\0", (512 - #data % 512) % 512)
  end
  parts[#parts + 1] = string.rep("\0", 1024)
  t.write(path .. ".tar", table.concat(parts))
  local z = banger.proc.run({ "zstd", "-q", "-f", path .. ".tar", "-o", path })
  t.eq(z.code, 0, z.stderr)
  banger.fs.remove(path .. ".tar")
end

-- The three files of a good bundle, to which a test adds or changes one.
local function good_entries(opts)
  opts = opts or {}
  local vmlinux = "a vmlinux"
  return {
    { name = "manifest.json", data = banger.json.encode({
      name = "k", arch = opts.arch or arch, version = "6.1.0-test", distro = "test",
      sha256 = opts.sha256 or banger.sys.sha256(vmlinux), modules = {}, vmlinux_bytes = #vmlinux,
      source_kind = "deb", imported_at = "2026-01-01T00:00:00Z" }) },
    { name = "vmlinux", data = vmlinux },
    { name = "initrd.img", data = "an initramfs" },
  }
end

-- A catalog in a fresh directory with one bundle entry "k" for the file at
-- `path` (copied in), its size and sha256 taken from it unless overridden.
local function catalog_for(path, over)
  local dir = t.tmpdir()
  banger.proc.run({ "cp", path, dir .. "/k.tar.zst" })
  local data = t.read(path)
  local entry = { name = "k", arch = arch, version = "6.1.0-test", url = "k.tar.zst", format = "bundle",
    size = #data, sha256 = banger.sys.sha256(data) }
  for key, v in pairs(over or {}) do
    entry[key] = v
  end
  t.write(dir .. "/catalog.json", banger.json.encode({ kernels = { entry } }))
  return "file://" .. dir .. "/catalog.json", dir
end

-- `kernel pull k` of that catalog into a fresh home: refused with `message`,
-- and nothing left in the kernels directory (no staging dir, no download).
local function refused(url, message)
  local home = t.tmpdir()
  local r = t.banger({ "kernel", "pull", "k", "--catalog", url }, { home = home })
  t.eq(r.code, 1, r.stderr)
  t.contains(r.stderr, message)
  t.eq(listing(kernels_dir(home)), {}, "nothing left in the kernels dir")
  return home
end

describe("kernel export", function()
  it("writes <name>-<arch>.tar.zst holding the kernel's three files, and its catalog entry", function()
    local home = t.tmpdir()
    local src = fake_kernel(home, "k1")
    local out = t.tmpdir() .. "/dist"
    local r = export(home, "k1", out)
    t.eq(r.code, 0, r.stderr)
    local entry = banger.json.decode(r.stdout)
    local file = out .. "/k1-" .. arch .. ".tar.zst"
    local data = t.read(file)
    t.eq(entry, {
      name = "k1", arch = arch, version = "6.1.0-test", distro = "test", url = "k1-" .. arch .. ".tar.zst",
      size = #data, sha256 = banger.proc.run({ "sha256sum", file }).stdout:match("^(%x+)"), format = "bundle",
    })
    t.eq(banger.json.decode(t.read(out .. "/k1-" .. arch .. ".json")), entry, "the entry is written beside it")
    t.eq(listing(out), { "k1-" .. arch .. ".json", "k1-" .. arch .. ".tar.zst" })

    -- tar(1) through zstd(1): exactly three regular root-owned files.
    local list = banger.proc.run({ "sh", "-c", "zstd -dc \"$1\" | tar -tv --numeric-owner", "sh", file })
    t.eq(list.code, 0, list.stderr)
    local names = {}
    for line in list.stdout:gmatch("[^\n]+") do
      t.truthy(line:match("^%-rw%-r%-%-r%-%- 0/0 "), "a regular 0644 root file: " .. line)
      names[#names + 1] = line:match("(%S+)$")
    end
    t.eq(names, { "manifest.json", "vmlinux", "initrd.img" })
    local x = t.tmpdir()
    t.eq(banger.proc.run({ "sh", "-c", "zstd -dc \"$1\" | tar -x -C \"$2\"", "sh", file, x }).code, 0)
    for _, f in ipairs({ "manifest.json", "vmlinux", "initrd.img" }) do
      t.eq(t.read(x .. "/" .. f), t.read(src .. "/" .. f), f)
    end

    -- Entries of several exports merge into one catalog (docs/kernels.md).
    fake_kernel(home, "k2")
    t.eq(export(home, "k2", out).code, 0)
    local merged = banger.proc.run({ "sh", "-c", "jq -s '{kernels: .}' \"$1\"/*-*.json", "sh", out })
    t.eq(merged.code, 0, merged.stderr)
    local names2 = {}
    for _, k in ipairs(banger.json.decode(merged.stdout).kernels) do
      names2[#names2 + 1] = k.name
    end
    t.eq(names2, { "k1", "k2" })
  end)

  it("refuses a kernel whose vmlinux no longer matches its manifest, writing nothing", function()
    local home = t.tmpdir()
    fake_kernel(home, "bad", { sha256 = string.rep("0", 64) })
    local out = t.tmpdir()
    local r = export(home, "bad", out)
    t.eq(r.code, 1)
    t.contains(r.stderr, "vmlinux sha256 is ")
    t.eq(listing(out), {})
    local missing = export(home, "absent", out)
    t.eq(missing.code, 1)
    t.contains(missing.stderr, "no kernel named 'absent'")
  end)
end)

describe("kernel pull of a bundle", function()
  it("unpacks an exported bundle under another home, the same files, source_kind bundle", function()
    local home = t.tmpdir()
    local src = fake_kernel(home, "k1")
    local out = t.tmpdir()
    t.eq(export(home, "k1", out).code, 0)
    t.write(out .. "/catalog.json", '{"kernels": [' .. t.read(out .. "/k1-" .. arch .. ".json") .. "]}")
    local other = t.tmpdir()
    local r = t.banger({ "kernel", "pull", "k1", "--as", "copy", "--catalog", "file://" .. out .. "/catalog.json",
      "--json" }, { home = other })
    t.eq(r.code, 0, r.stderr)
    local m = banger.json.decode(r.stdout)
    t.eq({ m.name, m.source_kind, m.version, m.distro, m.modules },
      { "copy", "bundle", "6.1.0-test", "test", { "virtio_blk" } })
    t.eq(m.source, "file://" .. out .. "/k1-" .. arch .. ".tar.zst")
    t.eq(listing(kernels_dir(other)), { "copy" })
    for _, f in ipairs({ "vmlinux", "initrd.img" }) do
      t.eq(t.read(kernels_dir(other) .. "/copy/" .. f), t.read(src .. "/" .. f), f)
    end
    -- Again without --replace: EEXIST; with it, the kernel is swapped.
    local again = t.banger({ "kernel", "pull", "k1", "--as", "copy", "--catalog", "file://" .. out .. "/catalog.json" },
      { home = other })
    t.eq(again.code, 1)
    t.contains(again.stderr, "already exists")
    t.eq(t.banger({ "kernel", "pull", "k1", "--as", "copy", "--replace", "--catalog",
      "file://" .. out .. "/catalog.json" }, { home = other }).code, 0)
    t.eq(listing(kernels_dir(other)), { "copy" })
  end)

  it("a .tar.zst URL is a bundle even without format", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    bundle(b, good_entries())
    local url = catalog_for(b, { format = banger.json.null })
    local home = t.tmpdir()
    local r = t.banger({ "kernel", "pull", "k", "--catalog", url }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.eq(listing(kernels_dir(home)), { "k" })
  end)

  it("refuses an entry that leaves the directory, leaving nothing anywhere", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    local entries = good_entries()
    table.insert(entries, 1, { name = "../../escaped", data = "out" })
    bundle(b, entries)
    local home = refused(catalog_for(b), "entry '../../escaped': a bundle holds only manifest.json, vmlinux and initrd.img")
    t.falsy(banger.fs.exists(home .. "/.local/escaped"), "nothing written outside")
    t.falsy(banger.fs.exists(kernels_dir(home) .. "/../escaped"))
  end)

  it("refuses a symlink or a hardlink in place of a file", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    local entries = good_entries()
    entries[2] = { name = "vmlinux", kind = "2", link = "/etc/passwd" }
    bundle(b, entries)
    refused(catalog_for(b), "entry 'vmlinux': not a regular file")
    entries[2] = { name = "vmlinux", kind = "1", link = "manifest.json" }
    bundle(b, entries)
    refused(catalog_for(b), "entry 'vmlinux': not a regular file")
  end)

  it("refuses a name it does not know, a file twice, or one past its size limit", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    local entries = good_entries()
    entries[#entries + 1] = { name = "modules/evil.ko", data = "x" }
    bundle(b, entries)
    refused(catalog_for(b), "entry 'modules/evil.ko': a bundle holds only")
    entries = good_entries()
    entries[#entries + 1] = { name = "initrd.img", data = "again" }
    bundle(b, entries)
    refused(catalog_for(b), "entry 'initrd.img': appears twice")
    entries = good_entries()
    entries[1].data = string.rep(" ", (1 << 20) + 1)
    bundle(b, entries)
    refused(catalog_for(b), "entry 'manifest.json' is larger than the allowed 1048576 bytes")
    entries = good_entries()
    table.remove(entries, 3)
    bundle(b, entries)
    refused(catalog_for(b), "has no initrd.img")
  end)

  it("refuses a wrong sha256 or a truncated download before unpacking anything", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    bundle(b, good_entries())
    refused(catalog_for(b, { sha256 = string.rep("0", 64) }), "sha256 is ")
    -- The server sends less than the catalog says.
    local data = t.read(b)
    local url, dir = catalog_for(b)
    t.write(dir .. "/k.tar.zst", data:sub(1, #data - 100))
    refused(url, (#data - 100) .. " bytes, expected " .. #data)
    -- A catalog whose size and sha256 describe a cut-off bundle: zstd says so.
    local cut = t.tmpdir() .. "/cut.tar.zst"
    t.write(cut, data:sub(1, #data - 5))
    refused(catalog_for(cut), "truncated zstd stream")
    -- A bundle entry needs its size.
    refused(catalog_for(b, { size = banger.json.null }), "needs its size in bytes")
  end)

  it("refuses a bundle for another architecture, by its entry or by its manifest", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    bundle(b, good_entries())
    refused(catalog_for(b, { arch = "riscv64" }), "is for riscv64, this host is " .. arch)
    bundle(b, good_entries({ arch = "riscv64" }))
    refused(catalog_for(b), "is for riscv64, this host is " .. arch)
  end)

  it("refuses a vmlinux that does not match the bundle's manifest", function()
    local b = t.tmpdir() .. "/b.tar.zst"
    bundle(b, good_entries({ sha256 = string.rep("1", 64) }))
    refused(catalog_for(b), "vmlinux sha256 is " .. banger.sys.sha256("a vmlinux") .. ", its manifest says")
  end)
end)

describe("kernel staging directories", function()
  -- A process that makes a staging directory (what a pull downloads into),
  -- writes into it, names it in a marker file and waits on stdin until it
  -- is killed or its stdin closes. Returns the child and the directory.
  local function holder(dir)
    local tmp = t.tmpdir()
    t.write(tmp .. "/hold.lua", string.format([[
local s = banger.kernel.staging(%q, "k")
banger.fs.write_atomic(s:path() .. "/kernel.deb", "partial download")
banger.fs.write_atomic(%q, s:path())
io.read("l")
]], dir, tmp .. "/path"))
    local c = t.spawn({ t.bin(), "run", tmp .. "/hold.lua", stdin = "pipe", env = t.env(tmp) })
    return c, t.wait_for(function()
      return banger.fs.exists(tmp .. "/path") and t.read(tmp .. "/path")
    end, 30000, "the staging directory")
  end

  it("a pull killed outright leaves one that the next pull removes; a live one is left alone", function()
    local home = t.tmpdir()
    local dir = kernels_dir(home)
    banger.fs.mkdir(dir, 493, true)
    local dead, dead_path = holder(dir)
    local live, live_path = holder(dir)
    t.truthy(dead_path:match("/%.pull%-k%-") and banger.fs.exists(dead_path .. "/kernel.deb"), dead_path)
    dead:kill(9)
    dead:wait()
    t.truthy(banger.fs.exists(dead_path), "kill -9 leaves it behind")
    -- A planted symlink under a staging name is neither followed nor removed.
    local outside = t.tmpdir()
    t.write(outside .. "/keep", "x")
    banger.fs.symlink(outside, dir .. "/.pull-evil")

    -- The next pull (a refused one: the catalog's bundle file is missing)
    -- makes its own staging directory, sweeping the dead one first.
    local out = t.tmpdir()
    t.write(out .. "/catalog.json", banger.json.encode({ kernels = { {
      name = "k", format = "bundle", arch = arch, url = "missing.tar.zst", size = 10, sha256 = string.rep("0", 64),
    } } }))
    local r = t.banger({ "kernel", "pull", "k", "--catalog", "file://" .. out .. "/catalog.json" }, { home = home })
    t.eq(r.code, 1, r.stderr)
    t.falsy(banger.fs.exists(dead_path), "the dead pull's directory is gone")
    t.truthy(banger.fs.exists(live_path .. "/kernel.deb"), "the live one is untouched")
    t.truthy(banger.fs.exists(outside .. "/keep"), "nothing through the symlink")
    live:close_stdin()
    t.eq(live:wait().code, 0)
    t.falsy(banger.fs.exists(live_path), "a staging directory is removed at close")
    banger.fs.remove(dir .. "/.pull-evil")
    t.eq(listing(dir), {})
  end)
end)
