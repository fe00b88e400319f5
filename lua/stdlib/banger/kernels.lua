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
  if type(name) ~= "string" or not name:match("^[%w][%w._-]*$") or #name > 64 then
    errors.raise("EINVAL", "invalid kernel name '" .. tostring(name) .. "'")
  end
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


--- A catalog name for a source path: linux-image-6.1.0-56-cloud-amd64_..._amd64.deb
-- becomes 6.1.0-56-cloud-amd64; vmlinuz-6.1.0-x becomes 6.1.0-x.
function M.name_for(source)
  local base = source:match("([^/]+)/*$") or source
  local v = base:match("^linux%-image%-([^_]+)") or base:match("^vmlinu[xz]%-(.+)$")
  return v or (base:gsub("%.deb$", ""):gsub("[^%w._-]", "-"))
end

return M
