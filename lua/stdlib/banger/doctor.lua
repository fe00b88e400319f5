--- banger.doctor: one check per prerequisite, each with the fix. A check
-- returns status ("ok", "warn" or "fail"), a detail line and, unless ok, a
-- fix. A script runs its own checks with run{ checks = ... } (e.g. the
-- default_checks() list with one appended); nothing is registered here.
-- A check marked `slow` runs a program or scans the host's processes and
-- NAT rules: `banger status` leaves those out of its one-line summary.
-- The report starts with the config file's check; while it fails, a check
-- that reads the config is reported as "skip" rather than failing with the
-- same error.
local config = require("banger.config")
local fs = require("banger.native.fs")
local proc = require("banger.native.proc")
local sys = require("banger.native.sys")
local vmm = require("banger.native.vmm")
local tools = require("banger.tools")

local M = {}

local function ok(detail)
  return { status = "ok", detail = detail }
end
local function warn(detail, fix)
  return { status = "warn", detail = detail, fix = fix }
end
local function fail(detail, fix)
  return { status = "fail", detail = detail, fix = fix }
end

local function first_line(argv)
  local r = proc.run(argv)
  if not r or r.code ~= 0 then
    return nil
  end
  return (r.stdout .. r.stderr):match("[^\n]+")
end

-- A binary named by a driver.* key: a missing one the user configured is
-- theirs to fix (name the key); a missing default is a package to install.
local function missing_binary(key, package)
  local bin = config.get().driver[key]
  if bin ~= config.schema.driver.fields[key].default then
    return bin .. " (driver." .. key .. ") not found",
      "set driver." .. key .. " in " .. config.path() .. " to an existing binary, or remove it to use "
        .. config.schema.driver.fields[key].default .. " from PATH"
  end
  return bin .. " not found", package
end

local function tool(name, needed_for)
  return {
    name = name,
    needed_for = needed_for,
    run = function()
      local path = tools.find(name)
      if path then
        return ok(path)
      end
      return fail(name .. " not found", tools.install_command(name))
    end,
  }
end

local builtin = {
  {
    name = "qemu",
    needed_for = "vm create/run (qemu driver)",
    slow = true,
    run = function()
      local path = vmm.find_executable(config.get().driver.qemu_bin)
      if not path then
        local detail, fix = missing_binary("qemu_bin", tools.install_command("qemu-system-x86_64"))
        -- with driver.name = "firecracker", QEMU is only used when asked for (--driver qemu)
        return (config.get().driver.name == "firecracker" and warn or fail)(detail, fix)
      end
      return ok(first_line({ path, "--version" }) or path)
    end,
  },
  {
    name = "firecracker",
    needed_for = "the firecracker driver (optional unless driver.name is firecracker)",
    slow = true,
    run = function()
      local driver = config.get().driver
      local path = vmm.find_executable(driver.firecracker_bin)
      if not path then
        local detail, fix = missing_binary("firecracker_bin",
          "install firecracker and set driver.firecracker_bin to use it")
        if driver.name == "firecracker" then
          return fail(detail .. ", and driver.name is firecracker: no VM can start", fix)
        end
        return warn(driver.name == "qemu" and detail or (detail .. ": VMs use QEMU"), fix)
      end
      return ok(first_line({ path, "--version" }) or path)
    end,
  },
  {
    name = "kvm",
    needed_for = "fast VMs",
    run = function()
      local caps = vmm.detect()
      if caps.kvm_usable then
        return ok("/dev/kvm is usable")
      end
      if config.get().driver.name == "firecracker" then
        return fail("no usable /dev/kvm" .. (caps.kvm_pvm and " (only kvm_pvm)" or "")
          .. ", and driver.name is firecracker, which needs KVM: no VM can start",
          "set driver.name = \"qemu\" (TCG works without KVM), or run on a host with hardware virtualisation")
      end
      if caps.kvm_pvm then
        return warn("/dev/kvm is kvm_pvm, which cannot run stock kernels: QEMU falls back to TCG (slow)",
          "run banger on a host with hardware virtualisation for KVM speed")
      end
      if caps.kvm_device then
        return warn("/dev/kvm exists but is not usable by this user: TCG fallback (slow)",
          "add the user to the kvm group (usermod -aG kvm $USER) and log in again")
      end
      return warn("no /dev/kvm: QEMU falls back to TCG (slow)", "enable virtualisation (VT-x/AMD-V) or nested KVM")
    end,
  },
  {
    name = "tun",
    needed_for = "guest networking",
    run = function()
      if vmm.detect().tun then
        return ok("/dev/net/tun present (taps reach QEMU as descriptors, no access needed)")
      end
      return fail("/dev/net/tun is missing", "modprobe tun")
    end,
  },
  {
    name = "privileges",
    needed_for = "bridges, taps and NAT",
    run = function()
      local priv = require("banger.priv")
      local mode, detail = priv.mode()
      if mode == "local-root" then
        return ok("running as root: privileged operations run in this process")
      end
      if mode == "helper" then
        local res, err = require("banger.native.priv").call_helper(detail, "ping", {})
        if res then
          return ok(string.format("root helper answering on %s (pid %d, banger %s)", detail, res.pid, res.version))
        end
        return fail("root helper at " .. detail .. " does not answer: " .. tostring(err),
          "sudo banger system restart (or sudo banger system install)")
      end
      local net_mode = config.get().network.mode
      if net_mode == "off" then
        return ok("network.mode is off: no privileged operation is needed")
      end
      return warn(detail .. ": VMs get no network", "sudo banger system install")
    end,
  },
  {
    name = "isolation",
    needed_for = "driver.isolate (QEMU as a uid of its own)",
    run = function()
      local driver = config.get().driver
      if not driver.isolate then
        return ok("off: QEMU runs as you (driver.isolate = true runs it as a uid of its own, docs/privileges.md)")
      end
      if driver.name == "firecracker" then
        return fail("driver.isolate needs the qemu driver", "set driver.name = \"qemu\" or driver.isolate = false")
      end
      local path = vmm.find_executable(driver.qemu_bin)
      local ok_bin, err = require("banger.native.validate").root_executable(path or driver.qemu_bin)
      if not ok_bin then
        return fail("the root helper will not run " .. (path or driver.qemu_bin) .. ": " .. tostring(err),
          "set driver.qemu_bin to a root-owned qemu-system-* binary (apt-get install qemu-system-x86)")
      end
      local mode, detail = require("banger.priv").mode()
      if not mode then
        return fail(detail, "sudo banger system install")
      end
      return ok("QEMU (" .. path .. ") is started by " .. (mode == "helper" and "the root helper" or "banger as root")
        .. " as a VMM uid")
    end,
  },
  {
    name = "bridge",
    needed_for = "guest networking",
    run = function()
      local net = config.get().network
      if not vmm.find_executable("ip") then
        return warn("ip not found: cannot look at " .. net.bridge .. " (banger makes bridges without it)",
          tools.install_command("ip"))
      end
      local r = proc.run({ "ip", "-j", "-4", "addr", "show", "dev", net.bridge })
      if not r or r.code ~= 0 then
        return ok(net.bridge .. " does not exist yet; it is created when the first VM starts")
      end
      if not r.stdout:find('"local":"' .. net.bridge_ip .. '"', 1, true) then
        return warn(net.bridge .. " exists without " .. net.bridge_ip,
          "check network.bridge_ip, or delete the bridge: sudo ip link del " .. net.bridge)
      end
      return ok(net.bridge .. " has " .. net.bridge_ip .. "/" .. net.cidr)
    end,
  },
  tool("nft", "NAT (--nat)"),
  tool("resize2fs", "fitting images to their content (image build, pull, import)"),
  tool("e2fsck", "starting a VM that was killed (replaying its work disk's journal before writing to it)"),
  tool("qemu-img", "keeping a provisioned VM as an image (banger.lua provision, qemu driver)"),
  tool("ssh-keygen", "SSH keys for guests"),
  tool("git", "vm run (copying the repository)"),
  {
    name = "busybox",
    needed_for = "kernel import (the initramfs)",
    run = function()
      if fs.exists("/bin/busybox") then
        return ok("/bin/busybox")
      end
      return fail("no /bin/busybox", tools.install_command("busybox"))
    end,
  },
  {
    name = "disk space",
    needed_for = "images and VMs",
    run = function()
      local dir = require("banger.state").layout().state
      while dir ~= "" and not fs.exists(dir) do
        dir = dir:match("^(.*)/[^/]*$") or ""
      end
      dir = dir == "" and "/" or dir
      local v, why = fs.statvfs(dir)
      if not v then
        return warn("could not read free space of " .. dir .. ": " .. why, "check that " .. dir .. " is readable")
      end
      local gib = v.avail / 1024 / 1024 / 1024
      local detail = string.format("%.1f GiB free under %s", gib, dir)
      if gib < 2 then
        return fail(detail, "free space: an image needs ~1 GiB and each VM its disks")
      elseif gib < 10 then
        return warn(detail, "free space before building images or running many VMs")
      end
      return ok(detail)
    end,
  },
  {
    name = "default kernel",
    needed_for = "vm run without --kernel",
    run = function()
      local kernels = require("banger.kernels")
      local name = config.get().vm.kernel
      if pcall(kernels.require, name) then
        return ok("kernel " .. name .. " is imported")
      end
      if vmm.find_executable("apt-get") then
        return ok("not imported yet; fetched with apt-get download on first use")
      end
      return fail("no kernel " .. name .. " and no apt-get to fetch one",
        "banger kernel import <vmlinuz|.deb> --name " .. name .. " (or banger kernel pull)")
    end,
  },
  {
    name = "default image",
    needed_for = "vm run without --image",
    run = function()
      local images = require("banger.images")
      local img = images.default()
      if img then
        return ok("image " .. img.name .. " is the default")
      end
      if vmm.find_executable("mmdebstrap") then
        if sys.getuid() ~= 0 and not tools.find("newuidmap") then
          return fail("none yet, and mmdebstrap cannot build one as a regular user without newuidmap",
            tools.install_command("newuidmap"))
        end
        return ok("none yet; built with mmdebstrap on first use (banger image build debian)")
      end
      return fail("no default image and no mmdebstrap to build one",
        "apt-get install mmdebstrap, or banger image pull REF and banger image list")
    end,
  },
  {
    name = "orphans",
    needed_for = "a host with nothing of banger's left behind",
    slow = true,
    run = function()
      local census = require("banger.census")
      local found, unchecked = census.scan()
      local note = #unchecked > 0 and (" (" .. table.concat(unchecked, "; ") .. ")") or ""
      if #found == 0 then
        return ok("every banger tap, NAT rule, hypervisor and VM directory belongs to a VM" .. note)
      end
      local names = {}
      for _, o in ipairs(found) do
        names[#names + 1] = o.kind .. " " .. o.detail
      end
      local r = warn(#found .. " banger host object(s) no VM accounts for: " .. table.concat(names, ", ") .. note,
        "banger vm prune --orphans")
      r.objects = {}
      for _, o in ipairs(found) do
        r.objects[#r.objects + 1] = census.describe(o)
      end
      return r
    end,
  },
}

-- What to do about a config.lua that does not load (`e` from config.load).
local function config_fix(e, path)
  if e.suggestion then
    return "rename " .. e.key .. " to " .. e.suggestion .. " in " .. path
  elseif e.why == "unknown key" then
    return "remove " .. e.key .. " from " .. path .. " (docs/config.md lists every key)"
  elseif e.key then
    return "fix " .. e.key .. " in " .. path .. " (docs/config.md has its type and rules)"
  end
  return "fix " .. path .. " (a Lua file returning a table, docs/config.md)"
end

-- The config file comes first: a broken one is reported once, here, and
-- the checks that read it are then skipped instead of each failing.
local function check_config()
  local path = config.path()
  local okay, e = pcall(config.get)
  if okay then
    return ok(fs.exists(path) and (path .. " is valid") or ("no " .. path .. ": every setting is the default"))
  end
  local errors = require("banger.errors")
  if not config.is_error(e) then
    if errors.is(e) and e.code == "ECANCELED" then
      error(e, 0)
    end
    return fail("check failed: " .. errors.message(e), "run with --debug and report it")
  end
  return fail(errors.message(e) .. (e.hint and (" (" .. e.hint .. ")") or ""), config_fix(e, path))
end

--- A fresh list of the built-in checks ({ name, needed_for, run }).
function M.default_checks()
  return table.move(builtin, 1, #builtin, 1, {})
end

--- Runs opts.checks (default: the built-in ones) after the config's own
-- check; a check that raises is reported as failed, one that needs the
-- config while it is broken as skipped.
function M.run(opts)
  local errors = require("banger.errors")
  local cfg = check_config()
  cfg.name, cfg.needed_for = "config", "every command but help, version and doctor"
  local results, failed, skipped = { cfg }, cfg.status == "fail" and 1 or 0, 0
  for _, c in ipairs(opts and opts.checks or builtin) do
    local okay, res = pcall(c.run)
    if not okay and cfg.status == "fail" and config.is_error(res) then
      res = { status = "skip", detail = "skipped: it reads the config, which does not load (the first check)" }
    elseif not okay then
      res = fail("check failed: " .. errors.message(res), "run with --debug and report it")
    end
    res.name, res.needed_for = c.name, c.needed_for
    results[#results + 1] = res
    if res.status == "fail" then
      failed = failed + 1
    elseif res.status == "skip" then
      skipped = skipped + 1
    end
  end
  return { checks = results, failed = failed, skipped = skipped, uid = sys.getuid() }
end

return M
