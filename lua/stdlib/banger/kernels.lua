--- banger.kernels: the kernel catalog on disk, $XDG_STATE_HOME/banger/kernels/<name>/
-- with vmlinux, initrd.img and manifest.json.
local errors = require("banger.errors")
local state = require("banger.state")
local fs = require("banger.native.fs")
local json = require("banger.native.json")

local M = {}

function M.dir()
  return state.layout().state .. "/kernels"
end

--- The files of kernel `name`, or a clear error.
function M.require(name)
  if type(name) ~= "string" then
    errors.raise("EINVAL", "invalid kernel name: expected a string, got " .. type(name))
  end
  errors.check(require("banger.native.kernel").validate_name(name))
  local dir = M.dir() .. "/" .. name
  local manifest_text = fs.read(dir .. "/manifest.json")
  if not manifest_text then
    errors.raise("ENOENT", "no kernel named '" .. name .. "' (see 'banger kernel list', 'banger kernel import')")
  end
  local k = json.decode(manifest_text)
  k.dir = dir
  k.vmlinux = dir .. "/vmlinux"
  k.initrd = fs.exists(dir .. "/initrd.img") and (dir .. "/initrd.img") or nil
  return k
end

--- Imports a kernel into the catalog: kernel.import with banger-agent added
-- to the initramfs (its /init grows the disks' filesystems at every boot).
function M.import(opts)
  local o = { kernels_dir = M.dir(), agent = require("banger.golden").agent_binary() }
  for k, v in pairs(opts) do
    o[k] = v
  end
  return errors.check(require("banger.native.kernel").import(o))
end

--- Downloads the cloud kernel package with apt-get into the cache and
-- returns its path (nil, why when the host has no apt).
function M.apt_download(info)
  local proc = require("banger.native.proc")
  if not require("banger.native.vmm").find_executable("apt-get") then
    return nil, "apt-get is not available on this host"
  end
  local deps = proc.run({ "apt-cache", "depends", "linux-image-cloud-amd64" })
  local pkg = deps and deps.code == 0 and deps.stdout:match("Depends: (linux%-image%-%d[^\n%s]*)")
  if not pkg then
    return nil, "apt-cache cannot resolve linux-image-cloud-amd64 (run apt-get update?)"
  end
  local dir = state.layout().cache .. "/debs"
  fs.mkdir(dir, 448, true)
  for _, f in ipairs(fs.list(dir) or {}) do
    if f:find(pkg .. "_", 1, true) == 1 and f:match("%.deb$") then
      return dir .. "/" .. f
    end
  end
  if info then
    info("fetching " .. pkg .. " with apt-get download (the default kernel, once) ...")
  end
  local r = proc.run({ "apt-get", "download", pkg, cwd = dir, timeout_ms = 900000 })
  if not r or r.code ~= 0 then
    return nil, "apt-get download " .. pkg .. " failed: " .. (r and r.stderr or "")
  end
  for _, f in ipairs(fs.list(dir) or {}) do
    if f:find(pkg .. "_", 1, true) == 1 and f:match("%.deb$") then
      return dir .. "/" .. f
    end
  end
  return nil, "apt-get download left no package for " .. pkg
end

M.default_name = "debian-cloud"

--- The default kernel's manifest, importing it first when it is missing:
-- from the host's apt, else from the configured kernel catalog.
function M.ensure_default(info)
  local name = require("banger.config").get().vm.kernel or M.default_name
  local ok, k = pcall(M.require, name)
  if ok then
    return k
  end
  local deb, why = M.apt_download(info)
  if deb then
    if info then
      info("importing the default kernel '" .. name .. "' from " .. deb)
    end
    M.import({ source = deb, name = name, distro = "debian" })
    return M.require(name)
  end
  local catalog = require("banger.config").get().kernel.catalog_url
  if not catalog then
    errors.raise("ENOENT", "no kernel '" .. name .. "', and none can be fetched: " .. why
      .. "; import one with 'banger kernel import' or set kernel.catalog_url")
  end
  require("banger.kernel_catalog").pull({ name = name, catalog = catalog })
  return M.require(name)
end

--- Removes kernel `name` from the catalog; EBUSY while a VM boots it.
---@param name string
function M.remove(name)
  local users = require("banger.vms").using_kernel(name)
  if #users > 0 then
    errors.raise("EBUSY", "kernel '" .. name .. "' is used by VM '" .. users[1] .. "'")
  end
  errors.check(require("banger.native.kernel").remove(M.dir(), name))
end

--- A catalog name for a source path: linux-image-6.1.0-56-cloud-amd64_..._amd64.deb
-- becomes 6.1.0-56-cloud-amd64; vmlinuz-6.1.0-x becomes 6.1.0-x.
function M.name_for(source)
  local base = source:match("([^/]+)/*$") or source
  local v = base:match("^linux%-image%-([^_]+)") or base:match("^vmlinu[xz]%-(.+)$")
  return v or (base:gsub("%.deb$", ""):gsub("[^%w._-]", "-"))
end

return M
