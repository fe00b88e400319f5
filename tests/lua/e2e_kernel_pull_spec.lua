-- kernel pull against a real HTTP server on 127.0.0.1 (busybox httpd)
-- serving a catalog and Debian's cloud kernel package, or a kernel bundle
-- written by kernel export (e2e_vm_spec.lua boots a VM on such a kernel).
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()

local serve = e2e.serve

describe("kernel pull", function()
  local deb = e2e.kernel_deb()
  local sha = banger.proc.run({ "sha256sum", deb }).stdout:match("^(%x+)")

  local function site(entry_sha)
    local dir = t.tmpdir()
    banger.proc.run({ "cp", deb, dir .. "/kernel.deb" })
    t.write(dir .. "/catalog.json", banger.json.encode({ kernels = {
      { name = "cloud", url = "kernel.deb", sha256 = entry_sha, distro = "debian",
        size = banger.fs.stat(deb).size },
    } }))
    return dir
  end

  it("downloads, verifies and imports", function()
    local httpd, base = serve(site(sha))
    local home = t.tmpdir()
    local r = t.banger({ "kernel", "pull", "cloud", "--catalog", base .. "/catalog.json", "--json" },
      { home = home, timeout_ms = 120000 })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 0, r.stderr)
    local m = json_doc.conforms("kernel pull", r.stdout)
    t.eq(m.name, "cloud")
    t.eq(m.distro, "debian")
    t.eq(m.source, base .. "/kernel.deb")
    t.contains(t.banger({ "kernel", "list" }, { home = home }).stdout, "cloud")
    t.eq(banger.fs.list(home .. "/.local/state/banger/kernels"), { "cloud" }, "no temporary file left")
  end)

  it("kernel export, then kernel pull of the bundle over HTTP under another home: the same kernel", function()
    local home, export, pull, info = e2e.home_from_bundle({ image = false })
    local entry = json_doc.conforms("kernel export", export.stdout)
    t.eq({ entry.name, entry.format, entry.url }, { "debian-cloud", "bundle", "debian-cloud-x86_64.tar.zst" })
    local m = json_doc.conforms("kernel pull", pull.stdout)
    t.eq({ m.name, m.source_kind, m.source }, { "debian-cloud", "bundle", info.base .. "/debian-cloud-x86_64.tar.zst" })
    t.contains(pull.stderr, "downloading " .. info.base .. "/debian-cloud-x86_64.tar.zst")
    local from = info.src .. "/.local/state/banger/kernels/debian-cloud"
    local to = home .. "/.local/state/banger/kernels/debian-cloud"
    for _, f in ipairs({ "vmlinux", "initrd.img" }) do
      t.eq(banger.sys.sha256(t.read(to .. "/" .. f)), banger.sys.sha256(t.read(from .. "/" .. f)), f)
    end
    local original = banger.json.decode(t.read(from .. "/manifest.json"))
    t.eq({ m.version, m.sha256, m.modules, m.vmlinux_bytes },
      { original.version, original.sha256, original.modules, original.vmlinux_bytes })
    t.eq(banger.fs.list(home .. "/.local/state/banger/kernels"), { "debian-cloud" }, "no temporary file left")
  end)

  it("refuses a download whose sha256 does not match, leaving nothing", function()
    local httpd, base = serve(site(string.rep("0", 64)))
    local home = t.tmpdir()
    local r = t.banger({ "kernel", "pull", "cloud", "--catalog", base .. "/catalog.json" }, { home = home })
    httpd:kill(9)
    httpd:wait()
    t.eq(r.code, 1)
    t.contains(r.stderr, "sha256 is " .. sha .. ", expected " .. string.rep("0", 64))
    t.eq(e2e.list(home .. "/.local/state/banger/kernels"), {})
  end)

  it("reports unknown names, missing catalogs and file:// catalogs", function()
    local dir = site(sha)
    local home = t.tmpdir()
    local missing = t.banger({ "kernel", "pull", "nope", "--catalog", "file://" .. dir .. "/catalog.json" }, { home = home })
    t.eq(missing.code, 1)
    t.contains(missing.stderr, "no kernel 'nope' in file://")
    local nocat = t.banger({ "kernel", "pull", "cloud" }, { home = home })
    t.eq(nocat.code, 2)
    t.contains(nocat.stderr, "no catalog")
    local ok = t.banger({ "kernel", "pull", "cloud", "--as", "local-copy", "--catalog", "file://" .. dir .. "/catalog.json" },
      { home = home, timeout_ms = 120000 })
    t.eq(ok.code, 0, ok.stderr)
    t.contains(t.banger({ "kernel", "list" }, { home = home }).stdout, "local-copy")
  end)

  it("the default kernel comes from kernel.catalog_url when the host has no apt-get", function()
    -- banger.kernels.ensure_default pulls through banger.kernel_catalog
    -- (no recipe): PATH without apt-get stands for a host without apt.
    local dir = t.tmpdir()
    banger.proc.run({ "cp", deb, dir .. "/kernel.deb" })
    t.write(dir .. "/catalog.json", banger.json.encode({ kernels = {
      { name = "debian-cloud", url = "kernel.deb", sha256 = sha, distro = "debian" } } }))
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/config.lua", string.format(
      'return { network = { mode = "off" }, kernel = { catalog_url = "file://%s/catalog.json" } }\n', dir))
    local env = {}
    for _, kv in ipairs(t.env(home)) do
      if not kv:match("^PATH=") then
        env[#env + 1] = kv
      end
    end
    env[#env + 1] = "PATH=" .. dir  -- no apt-get here, nor in /usr/local/sbin, /usr/sbin, /sbin
    local r = banger.proc.run({ t.bin(), "kernel", "default", "--json", env = env, cwd = home, timeout_ms = 120000 })
    t.eq(r.code, 0, r.stderr)
    t.contains(r.stderr, "downloading file://" .. dir .. "/kernel.deb")
    local m = json_doc.conforms("kernel default", r.stdout)
    t.eq(m.name, "debian-cloud")
    t.eq(m.source, "file://" .. dir .. "/kernel.deb")
    t.eq(banger.fs.list(home .. "/.local/state/banger/kernels"), { "debian-cloud" }, "no temporary file left")
  end)
end)
