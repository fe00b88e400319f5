-- VM settings: one check (banger.vm_settings, over config.lua's schema) for
-- flags, scripts and files; every bad value reported before any lookup.
local settings = require("banger.vm_settings")
local config = require("banger.config")

local function files_under(dir)
  local r = banger.proc.run({ "find", dir, "-mindepth", "1" })
  return r.stdout
end

describe("vm settings", function()
  it("reports every bad value, in one error, with the schema's reasons", function()
    local p = settings.problems({ vcpus = 1000, memory = "0", disk = "1", work_disk = "lots", image = "../x",
      kernel = "../k", name = "Box", driver = "xen", accel = "hvf", nat = "yes", start = false })
    local got = {}
    for _, x in ipairs(p) do
      got[#got + 1] = x.setting
    end
    t.eq(got, { "name", "image", "kernel", "vcpus", "memory", "disk", "work_disk", "nat", "driver", "accel" })
    t.eq(#settings.problems({ vcpus = 2, memory = "512MiB", disk = "1GiB", work_disk = 64 * 1024 * 1024, nat = true,
      image = "debian-12", kernel = "6.1.0-27-cloud-amd64", name = "box-1", driver = "qemu", accel = "tcg" }), 0)
    -- the reason is config.lua's own, word for word
    local e = t.raises(function() config.validate({ vm = { vcpus = 1000 } }, "config.lua") end, "EINVAL")
    t.contains(e.message, "vm.vcpus: " .. settings.problems({ vcpus = 1000 })[1].reason)
    e = t.raises(function() config.validate({ vm = { image = "../x" } }, "config.lua") end, "EINVAL")
    t.contains(e.message, "vm.image: invalid image name '../x'")
  end)

  it("names a file's settings by their config keys, as a config error", function()
    local e = t.raises(function()
      settings.check({ vcpus = 0, memory = "lots", image = "debian-12" }, { source = "/p/banger.lua" })
    end, "EINVAL")
    t.eq(e.exit, 78)
    t.eq(e.message, "/p/banger.lua: vm.vcpus: must be between 1 and 32, got 0; "
      .. "vm.memory: 'lots' is not a size (use e.g. 512MiB, 2GiB)")
  end)

  it("banger.vm.create refuses bad settings before looking anything up", function()
    local e = t.raises(function()
      banger.vm.create({ name = "box", image = "nope", memory = "1", vcpus = 0 })
    end, "EINVAL")
    t.contains(e.message, "vcpus: must be between 1 and 32, got 0")
    t.contains(e.message, "memory: '1' has no unit")
    t.not_contains(e.message, "no image")
  end)

  it("vm create names every bad flag, not the missing image, and creates nothing", function()
    local home = t.tmpdir()
    local r = t.banger({ "vm", "create", "--memory", "0", "--cpus", "1000", "--image", "nope", "box" }, { home = home })
    t.eq(r.code, 2, r.stderr)
    t.contains(r.stderr, "--cpus 1000: must be between 1 and 32, got 1000")
    t.contains(r.stderr, "--memory: size must be positive, got '0'")
    t.contains(r.stderr, "see 'banger vm create --help'")
    t.not_contains(r.stderr, "nope")
    t.eq(files_under(home .. "/.local/state/banger/locks"), "", "no lock file")
    t.falsy(banger.fs.exists(home .. "/.local/state/banger/vms"), "no VM directory")
    r = t.banger({ "vm", "create", "--disk", "1", "--work-disk", "1MiB", "--image", "../x", "Box" }, { home = home })
    t.eq(r.code, 2)
    t.contains(r.stderr, "NAME: invalid VM name 'Box'")
    t.contains(r.stderr, "--image: invalid image name '../x'")
    t.contains(r.stderr, "--disk: '1' has no unit")
    t.contains(r.stderr, "--work-disk 1MiB: must be at least 64MiB")
  end)

  it("vm run --dry-run fails the same way instead of listing files", function()
    local repo = t.tmpdir()
    banger.proc.run({ "git", "-C", repo, "init", "-q" })
    t.write(repo .. "/a.txt", "a\n")
    banger.proc.run({ "git", "-C", repo, "add", "a.txt" })
    local r = t.banger({ "vm", "run", "--dry-run", "--memory", "0", "--cpus", "1000", "--image", "nope" }, { cwd = repo })
    t.eq(r.code, 2, r.stderr)
    t.contains(r.stderr, "--cpus 1000: must be between 1 and 32, got 1000")
    t.contains(r.stderr, "--memory: size must be positive, got '0'")
    t.eq(r.stdout, "", "no file list")
    r = t.banger({ "vm", "run", "--dry-run", "--name", "../x" }, { cwd = repo })
    t.eq(r.code, 2)
    t.contains(r.stderr, "--name: invalid VM name '../x'")
    r = t.banger({ "vm", "run", "--dry-run", "--memory", "2GiB", "--cpus", "2" }, { cwd = repo })
    t.eq(r.code, 0, r.stderr)
    t.eq(r.stdout, "a.txt\n")
  end)
end)
