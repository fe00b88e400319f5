--- banger.vm_settings: the one check of a VM's settings, wherever they come
-- from: `vm create` and `vm run` flags, a script's banger.vm.create{...},
-- a project's banger.lua. Each value goes through config.lua's schema
-- (config.check on "vm.vcpus", "driver.name", ...), so a rule is written
-- once; every bad value is reported, not only the first, and before
-- anything is looked up or created.
local config = require("banger.config")
local errors = require("banger.errors")
local validate = require("banger.native.validate")

local M = {}

-- Each setting and the schema key whose rule it follows.
M.keys = {
  image = "vm.image", kernel = "vm.kernel", vcpus = "vm.vcpus", memory = "vm.memory", disk = "vm.disk",
  work_disk = "vm.work_disk", nat = "vm.nat", driver = "driver.name", accel = "driver.accel",
  allow_hosts = "network.allow",
}

-- How `vm create` and `vm run` spell them.
M.flags = {
  name = "--name", image = "--image", kernel = "--kernel", vcpus = "--cpus", memory = "--memory", disk = "--disk",
  work_disk = "--work-disk", nat = "--nat", driver = "--driver", accel = "--accel", publish = "--publish",
  allow_hosts = "--allow-host",
}

--- The flags `vm create` and `vm run` both take (a fresh list each call,
-- for a recipe's `flags`); from_flags turns their parsed values into
-- settings.
function M.cli_flags()
  return {
    { "image", type = "string", complete = "image", help = "image name (default: config vm.image)" },
    { "kernel", type = "string", complete = "kernel", help = "kernel name (default: the image's, else config vm.kernel)" },
    { "cpus", type = "integer", help = "virtual CPUs" },
    { "memory", type = "string", metavar = "SIZE", help = "memory, e.g. 2GiB" },
    { "disk", type = "string", metavar = "SIZE", help = "root disk size" },
    { "work-disk", type = "string", metavar = "SIZE", help = "work disk size (mounted at /root)" },
    { "nat", type = "boolean", tristate = true,
      help = "give the VM outbound NAT (--no-nat: none; default: config vm.nat)" },
    { "driver", type = "string", choices = { "auto", "qemu", "firecracker" }, help = "hypervisor driver" },
    { "accel", type = "string", choices = { "auto", "kvm", "tcg" }, help = "QEMU acceleration" },
    { "publish", short = "p", type = "list", metavar = "HOSTPORT:GUESTPORT[/udp]",
      help = "forward a host port on 127.0.0.1 to the VM's port (see 'banger vm forward')" },
    { "allow-host", type = "list", metavar = "NAME",
      help = "egress allow-list (repeatable; '*.example.com' for subdomains): the VM resolves and reaches only these "
        .. "names, everything else it sends out is dropped; implies --nat (default: config network.allow)" },
  }
end

--- The allow-list `settings` give (else config network.allow), validated
-- and lower-cased, without duplicates; {} for none.
function M.allow_hosts(settings)
  local list = settings.allow_hosts
  if list == nil then
    list = config.get().network.allow
  end
  local out, seen = {}, {}
  for _, pattern in ipairs(list) do
    local p = errors.check(validate.allow_host(pattern))
    if not seen[p] then
      seen[p] = true
      out[#out + 1] = p
    end
  end
  return out
end

--- The settings given by M.cli_flags() flags (nil where a flag was not given).
function M.from_flags(opts)
  return { image = opts.image, kernel = opts.kernel, vcpus = opts.cpus, memory = opts.memory, disk = opts.disk,
    work_disk = opts.work_disk, nat = opts.nat, driver = opts.driver, accel = opts.accel,
    publish = opts.publish and #opts.publish > 0 and opts.publish or nil,
    allow_hosts = opts.allow_host and #opts.allow_host > 0 and opts.allow_host or nil }
end

--- The forwards `settings.publish` asks for (a list of
-- "HOSTPORT:GUESTPORT[/udp]"), parsed; none when it is nil. M.check has
-- vetted them.
function M.publish(settings)
  if settings.publish == nil then
    return {}
  end
  return errors.check(require("banger.forwards").parse_list(settings.publish))
end

--- A size setting in whole MiB: `size` as units.parse_size reads it, else
-- a usage error naming `flag` (also when it is not a whole number of MiB).
function M.mib(size, flag)
  local bytes, why = require("banger.units").parse_size(size)
  if not bytes then
    errors.usage(flag .. ": " .. why)
  end
  if bytes % (1024 * 1024) ~= 0 then
    errors.usage(flag .. ": " .. tostring(size) .. " is not a whole number of MiB")
  end
  return bytes // (1024 * 1024)
end

local order = { "name", "image", "kernel", "vcpus", "memory", "disk", "work_disk", "nat", "driver", "accel", "publish",
  "allow_hosts" }

local function reason(setting, v)
  if setting == "name" then
    if type(v) ~= "string" then
      return "expected a string, got " .. type(v)
    end
    local ok, why = validate.vm_name(v)
    return not ok and why or nil
  end
  if setting == "publish" then
    if type(v) ~= "table" then
      return "expected a list of 'HOSTPORT:GUESTPORT[/udp]', got " .. type(v)
    end
    local ok, why = require("banger.forwards").parse_list(v)
    return not ok and why or nil
  end
  local ok, e = pcall(config.check, M.keys[setting], v, "")
  if not ok then
    return type(e) == "table" and e.why or errors.message(e)
  end
end

--- The bad settings, in a fixed order: { { setting =, value =, reason = }, ... }.
-- Keys other than the settings above (start, wait, ...) are not looked at.
function M.problems(settings)
  local out = {}
  for _, setting in ipairs(order) do
    local v = settings[setting]
    if v ~= nil then
      local why = reason(setting, v)
      if why then
        out[#out + 1] = { setting = setting, value = v, reason = why }
      end
    end
  end
  return out
end

--- Returns `settings` when every one is valid, else raises one error that
-- names each bad one. how.names labels them (M.flags for the CLI; default
-- the schema key, "vm.vcpus", with how.source, else the setting's name); how.command makes it a usage error (exit 2)
-- showing each value and pointing at that command's help; how.source (a file) makes it a config
-- error (exit 78) prefixed with the file.
function M.check(settings, how)
  how = how or {}
  local problems = M.problems(settings)
  if #problems == 0 then
    return settings
  end
  local parts = {}
  for _, p in ipairs(problems) do
    local label = how.names and how.names[p.setting] or (how.source and M.keys[p.setting]) or p.setting
    -- Show what was given, unless the reason already quotes it.
    if how.command and type(p.value) ~= "boolean" and type(p.value) ~= "table" and not p.reason:find("'" .. tostring(p.value) .. "'", 1, true) then
      label = label .. " " .. tostring(p.value)
    end
    parts[#parts + 1] = label .. ": " .. p.reason
  end
  local message = table.concat(parts, "; ")
  if how.command then
    errors.usage(message, how.command)
  elseif how.source then
    errors.raise("EINVAL", how.source .. ": " .. message, { exit = 78 })
  end
  errors.raise("EINVAL", "invalid VM settings: " .. message)
end

return M
