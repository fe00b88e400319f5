--- banger.project: a repository's banger.lua, its Vagrantfile.
--
--   vm = { vcpus = 4, memory = "4GiB", disk = "16GiB", nat = true,
--          file_sync = { { host = "~/.npmrc", guest = "~/.npmrc" } } }
--   function provision(vm)
--     vm:exec{ "apt-get", "install", "-y", "build-essential" }
--   end
--
-- (or the same as a returned table). `vm` takes config.lua's vm keys, with
-- the same rules, plus file_sync. A project is input until the user trusts
-- it (banger.trust): before that, the file is read as data only, in the
-- sandbox config.lua gets, and nothing that acts beyond the VM's own shape
-- is used: provision (code), vm.file_sync (your files), vm.nat (the
-- network). Once trusted, the file is a program with the recipes' API.
-- Provisioning runs once per version of the file and base image: the
-- provisioned root disk becomes an image of its own ("p-<repo>-<hash>").
local errors = require("banger.errors")
local config = require("banger.config")
local datafile = require("banger.datafile")
local fs = require("banger.native.fs")
local sys = require("banger.native.sys")
local trust = require("banger.trust")

local M = {}

-- What banger.lua's settings may do before the project is trusted is
-- limited to the VM's shape; these reach further.
M.needs_trust = {
  provision = "runs code",
  ["vm.file_sync"] = "copies files of yours into the VM",
  ["vm.nat"] = "gives the VM outbound network access",
  ["vm.allow_hosts"] = "gives the VM outbound network access to those names",
}

local function fail(project, key, why)
  local line = datafile.line_of(project.text, key)
  errors.raise("EINVAL", project.path .. (line and (":" .. line) or "") .. ": " .. key .. ": " .. why, { exit = 78 })
end

-- Evaluates a trusted banger.lua as the program it is.
local function run_trusted(project)
  local env = setmetatable({ banger = require("banger") }, { __index = _G })
  local chunk, err = load(project.text, "@" .. project.path, "t", env)
  if not chunk then
    errors.raise("ESYNTAX", err, { exit = 78 })
  end
  local ok, ret = pcall(chunk)
  if not ok then
    errors.raise("EINVAL", errors.message(ret), { exit = 78 })
  end
  return type(ret) == "table" and ret or env
end

-- Reads an untrusted banger.lua as data (banger.datafile's sandbox).
local function read_untrusted(project)
  local ok, decl, functions = pcall(datafile.eval, project.text, project.path, { globals = true })
  if not ok then
    if errors.is(decl) and decl.code ~= "ESYNTAX" then
      trust.refuse(project.root, errors.message(decl), "read as data only, without os, io or require")
    end
    error(decl, 0)
  end
  if type(decl) ~= "table" then
    errors.raise("EINVAL", project.path .. ": must return a table or assign vm = {...}", { exit = 78 })
  end
  for _, key in ipairs(functions) do
    if key ~= "provision" then
      fail(project, key, "a function is not a setting")
    end
    project.has_provision = true
  end
  return decl
end

local function check_vm(project, vm)
  if type(vm) ~= "table" then
    fail(project, "vm", "expected a table, got " .. type(vm))
  end
  local vm_fields = config.schema.vm.fields
  local out = {}
  for k, v in pairs(vm) do
    local key = "vm." .. tostring(k)
    local ok, e = pcall(function()
      if k == "file_sync" then
        return config.check("file_sync", v, project.path)
      elseif k == "allow_hosts" then
        return config.check("network.allow", v, project.path)
      elseif vm_fields[k] then
        return config.check(key, v, project.path)
      end
      -- config.lua's spelling help; only vm keys are valid here
      local meant = type(k) == "string" and config.suggest("vm", k)
      local hint = meant and meant:match("^vm%.") and (" (did you mean " .. meant:sub(4) .. "?)") or ""
      fail(project, key, "unknown key" .. hint .. "; the keys are config.lua's vm keys, file_sync and allow_hosts")
    end)
    if not ok then
      if errors.is(e) and e.why then
        fail(project, key .. (e.key and e.key:match("^file_sync(.*)$") or ""), e.why)
      end
      error(e, 0)
    end
    out[k] = e
  end
  return out
end

--- The project's declarations, or nil when `root` has no banger.lua:
-- { path, root, trusted, vm = settings, provision = fn (trusted only),
--   has_provision, hash }.
function M.load(root)
  local path = root .. "/" .. trust.settings_file
  if not fs.exists(path) then
    return nil
  end
  local project = { path = path, root = root, trusted = trust.is_trusted(root) }
  project.text = project.trusted and trust.read(root, trust.settings_file) or datafile.read(path)
  local decl = project.trusted and run_trusted(project) or read_untrusted(project)
  for k, v in pairs(decl) do
    -- A trusted file may define helper functions (and sees `banger`).
    local helper = project.trusted and (type(v) == "function" or k == "banger")
    if k ~= "vm" and k ~= "provision" and not helper then
      fail(project, tostring(k), "unknown key (banger.lua sets vm and provision)")
    end
  end
  project.vm = check_vm(project, rawget(decl, "vm") or {})
  local provision = rawget(decl, "provision")
  if provision ~= nil and type(provision) ~= "function" then
    fail(project, "provision", "expected a function")
  end
  if project.trusted then
    project.provision = provision
    project.has_provision = provision ~= nil
  end
  project.hash = sys.sha256(project.text)
  return project
end

--- Raises EUNTRUSTED (exit 77) unless the project is trusted; `key` is
-- one of M.needs_trust.
function M.require_trust(project, key)
  if not project.trusted then
    local line = datafile.line_of(project.text, key)
    trust.refuse(project.root, project.path .. (line and (":" .. line) or ""), key .. " " .. M.needs_trust[key])
  end
end

--- The VM settings of a command: its flags (`flags`, nil where not given)
-- over the project's. Raises before anything is created when a setting
-- that needs trust would come from an untrusted project.
function M.vm_settings(project, flags)
  local pv = project and project.vm or {}
  local out = {}
  for _, k in ipairs({ "image", "kernel", "vcpus", "memory", "disk", "work_disk" }) do
    if flags[k] ~= nil then
      out[k] = flags[k]
    else
      out[k] = pv[k]
    end
  end
  if flags.nat ~= nil then
    out.nat = flags.nat
  elseif pv.nat ~= nil then
    if pv.nat then
      M.require_trust(project, "vm.nat")
    end
    out.nat = pv.nat
  end
  if pv.allow_hosts and #pv.allow_hosts > 0 and flags.allow_hosts == nil then
    M.require_trust(project, "vm.allow_hosts")
    out.allow_hosts = pv.allow_hosts
  elseif flags.allow_hosts ~= nil then
    out.allow_hosts = flags.allow_hosts
  end
  if pv.file_sync and #pv.file_sync > 0 then
    M.require_trust(project, "vm.file_sync")
    out.file_sync = pv.file_sync
  end
  if project and project.has_provision then
    M.require_trust(project, "provision")
  end
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
