--- banger.project: a repository's banger.lua, its Vagrantfile.
--
--   vm = { image = "debian-12", cpus = 4, memory = "4GiB", disk = "16GiB", nat = true,
--          file_sync = { { host = "~/.npmrc", guest = "~/.npmrc" } } }
--   function provision(vm)
--     vm:exec{ "apt-get", "install", "-y", "build-essential" }
--   end
--
-- (or the same as a returned table). The file is project code, trusted like a
-- Makefile: it runs with the same API as recipes. Provisioning runs once per
-- version of the file and base image: the provisioned root disk becomes an
-- image of its own ("project-<hash>"), so every later `vm run` starts from it.
local errors = require("banger.errors")
local config = require("banger.config")
local fs = require("banger.native.fs")
local sys = require("banger.native.sys")

local M = {}

local keys = { image = "vm.image", cpus = "vm.vcpus", memory = "vm.memory", disk = "vm.disk", nat = "vm.nat" }

--- The project's declarations, or nil when `root` has no banger.lua.
function M.load(root)
  local path = root .. "/banger.lua"
  if not fs.exists(path) then
    return nil
  end
  local text = errors.check(fs.read(path))
  local env = setmetatable({ banger = require("banger") }, { __index = _G })
  local chunk, err = load(text, "@" .. path, "t", env)
  if not chunk then
    errors.raise("ESYNTAX", err, { exit = 78 })
  end
  local ok, ret = pcall(chunk)
  if not ok then
    errors.raise("EINVAL", errors.message(ret), { exit = 78 })
  end
  local decl = type(ret) == "table" and ret or env
  local vm = rawget(decl, "vm") or {}
  if type(vm) ~= "table" then
    errors.raise("EINVAL", path .. ": vm: expected a table", { exit = 78 })
  end
  local out = { path = path, root = root, vm = {}, provision = rawget(decl, "provision") }
  for k, v in pairs(vm) do
    if k == "file_sync" then
      out.vm.file_sync = config.check("file_sync", v, path)
    elseif keys[k] then
      out.vm[k] = config.check(keys[k], v, path)
    else
      errors.raise("EINVAL", path .. ": vm." .. tostring(k) .. ": unknown key", { exit = 78 })
    end
  end
  if out.provision ~= nil and type(out.provision) ~= "function" then
    errors.raise("EINVAL", path .. ": provision: expected a function", { exit = 78 })
  end
  out.hash = sys.sha256(text)
  return out
end

--- The name of the image holding this project's provisioned root disk.
function M.image_name(project, base_image)
  local repo = (project.root:match("([^/]+)$") or "project"):lower():gsub("[^a-z0-9-]", "-"):gsub("^[^a-z]+", "")
  local h = sys.sha256(project.hash .. "\n" .. (base_image.digest or base_image.name) .. "\n" .. base_image.rootfs_path)
  return ("p-" .. (repo ~= "" and repo:sub(1, 40) or "project") .. "-" .. h:sub(1, 12)):gsub("%-+", "-")
end

--- The handle a provision function gets: vm:exec{...} raises when the
-- command fails (unless check = false, then it returns the code); vm:put
-- writes a file in the guest.
function M.vm_handle(row)
  local guest = require("banger.guest")
  local h = { name = row.name }
  function h:exec(argv)
    local r = guest.exec(row, argv, { env = argv.env, cwd = argv.cwd })
    if argv.check ~= false and r.code ~= 0 then
      errors.raise("EPROVISION", "provision: `" .. table.concat(argv, " ") .. "` exited with " .. r.code)
    end
    return r.code
  end
  function h:put(path, data, mode)
    local c <close> = guest.connect(row)
    c:put(path, data, { mode = mode or tonumber("644", 8) })
  end
  return h
end

return M
