-- banger.kernel_catalog (the catalog/download/verify flow of `kernel pull`)
-- and banger.kernels.remove, in-process against file:// catalogs and a real
-- state database. The full pull of a real kernel package over HTTP is
-- e2e_kernel_pull_spec.lua.
local catalog = banger.kernel_catalog

-- Runs `body` as a banger script in `home`; returns what it printed.
local function script(home, body, ...)
  local path = t.tmpdir() .. "/s.lua"
  t.write(path, body)
  local r = t.banger({ "run", path, ... }, { home = home })
  t.eq(r.code, 0, r.stderr)
  return r.stdout
end

local function site(entries)
  local dir = t.tmpdir()
  t.write(dir .. "/catalog.json", banger.json.encode({ kernels = entries }))
  return dir, "file://" .. dir .. "/catalog.json"
end

describe("kernel catalog", function()
  it("resolves artifact URLs against the catalog's directory", function()
    t.eq(catalog.resolve_url("http://h/k/catalog.json", "linux.deb"), "http://h/k/linux.deb")
    t.eq(catalog.resolve_url("http://h/k/catalog.json", "https://o/linux.deb"), "https://o/linux.deb")
    t.eq(catalog.resolve_url("file:///srv/catalog.json", "sub/vmlinuz"), "file:///srv/sub/vmlinuz")
  end)

  it("fetches a catalog; a file that is not one is EINVAL, a missing one says why", function()
    local _, url = site({ { name = "a", url = "a.deb", sha256 = string.rep("a", 64) } })
    t.eq(catalog.fetch(url).kernels[1].name, "a")
    local dir = t.tmpdir()
    t.write(dir .. "/notjson", "<html>")
    t.write(dir .. "/nokernels", '{"images": []}')
    t.raises(function() catalog.fetch("file://" .. dir .. "/notjson") end, "not a kernel catalog")
    local e = t.raises(function() catalog.fetch("file://" .. dir .. "/nokernels") end, "EINVAL")
    t.contains(e.message, "expected {\"kernels\": [...]}")
    local missing = t.raises(function() catalog.fetch("file://" .. dir .. "/absent.json") end)
    t.not_contains(missing.message, "not a kernel catalog")
  end)

  it("finds an entry by name and requires its url and a 64-digit sha256", function()
    local c = { kernels = {
      { name = "good", url = "g.deb", sha256 = string.rep("F", 64) },
      { name = "short", url = "s.deb", sha256 = "abc" },
      { name = "nourl", sha256 = string.rep("0", 64) },
      "not an entry",
    } }
    t.eq(catalog.entry(c, "u", "good").url, "g.deb")
    t.raises(function() catalog.entry(c, "u", "absent") end, "ENOENT")
    t.raises(function() catalog.entry(c, "u", "short") end, "EINVAL")
    local e = t.raises(function() catalog.entry(c, "u", "nourl") end, "EINVAL")
    t.eq(e.message, "u: entry 'nourl' needs url and a sha256")
  end)

  it("a download whose sha256 does not match imports nothing and leaves no file", function()
    local dir, url = site({ { name = "k", url = "k.deb", sha256 = string.rep("0", 64), size = 9 } })
    t.write(dir .. "/k.deb", "not a kernel")
    local home = t.tmpdir()
    local out = script(home, [[
local ok, e = pcall(banger.kernel_catalog.pull, { name = "k", catalog = arg[1] })
print(ok, e.code)
print(#banger.fs.list(banger.kernels.dir()))
]], url)
    t.eq(out, "false\tEDIGEST\n0\n")
  end)

  it("refuses a local name that is not a valid kernel name before downloading", function()
    local dir, url = site({ { name = "k", url = "k.deb", sha256 = string.rep("0", 64) } })
    t.write(dir .. "/k.deb", "x")
    local home = t.tmpdir()
    t.eq(script(home, [[
local ok, e = pcall(banger.kernel_catalog.pull, { name = "k", catalog = arg[1], as = "../up" })
print(ok, e.code, banger.fs.exists(banger.kernels.dir()))
]], url), "false\tEINVAL\tfalse\n")
  end)
end)

describe("kernels.remove", function()
  it("refuses a kernel a VM boots (EBUSY naming the VM), removes it once unused", function()
    local home = t.tmpdir()
    local kdir = home .. "/.local/state/banger/kernels/k1"
    t.write(kdir .. "/manifest.json", '{"name":"k1","version":"6.1"}')
    t.write(kdir .. "/vmlinux", "x")
    local out = script(home, [[
local vms = banger.vms
local row = vms.insert("uses-k1", { image = "i", kernel = "k1", driver = "qemu", vcpus = 1, memory_mib = 128,
  disk_mib = 512, work_disk_mib = 64, nat = 0 })
local ok, e = pcall(banger.kernels.remove, "k1")
print(ok, e.code, e.message)
banger.state.db():exec("DELETE FROM vms WHERE id = ?", row.id)
banger.kernels.remove("k1")
print(banger.fs.exists(banger.kernels.dir() .. "/k1"))
local gone, e2 = pcall(banger.kernels.remove, "k1")
print(gone, e2.code)
]])
    t.eq(out, "false\tEBUSY\tkernel 'k1' is used by VM 'uses-k1'\nfalse\nfalse\tENOENT\n")
  end)

  it("kernel rm goes through it", function()
    local home = t.tmpdir()
    t.write(home .. "/.local/state/banger/kernels/k2/manifest.json", '{"name":"k2","version":"6.1"}')
    local r = t.banger({ "kernel", "rm", "k2" }, { home = home })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "removed kernel k2")
    t.eq(banger.fs.list(home .. "/.local/state/banger/kernels"), {})
  end)
end)
