--- banger.ssh_config: one marked Include block in ~/.ssh/config so plain
-- `ssh NAME.vm` uses banger's key and pinned host keys. The block includes
-- a banger-owned file and goes first in the file: an Include placed after a
-- Host line would only apply inside that Host's section.
local errors = require("banger.errors")
local fs = require("banger.native.fs")

local M = {}

M.begin_marker = "# >>> banger: managed by `banger ssh-config`; remove with `banger ssh-config uninstall` >>>"
M.end_marker = "# <<< banger <<<"

local function home()
  return assert(os.getenv("HOME"), "HOME is not set")
end

function M.paths()
  local cfg_home = os.getenv("XDG_CONFIG_HOME") or (home() .. "/.config")
  return { user = home() .. "/.ssh/config", included = cfg_home .. "/banger/ssh_config" }
end

function M.included_text()
  local key = require("banger.provision").ssh_key()
  return table.concat({
    "# Written by banger: SSH to banger VMs by name (<vm>.vm).",
    "Host *.vm",
    "  User root",
    "  IdentityFile " .. key.private,
    "  IdentitiesOnly yes",
    "  UserKnownHostsFile " .. require("banger.ssh").known_hosts(),
    "  StrictHostKeyChecking accept-new",
    "  HashKnownHosts no",
    "",
  }, "\n")
end

-- The file to edit: ~/.ssh/config itself, or, when it is a symlink (dotfile
-- managers), the file it points to, so the link survives; that target must
-- be ours.
local function target(path)
  local st = fs.lstat(path)
  if st and st.type == "symlink" then
    local real = errors.check(fs.realpath(path))
    local rst = errors.check(fs.stat(real))
    if rst.uid ~= require("banger.native.sys").getuid() then
      errors.raise("EPERM", path .. " points to " .. real .. ", which is not yours; refusing to edit it")
    end
    return real, rst.mode
  end
  return path, st and st.mode or tonumber("600", 8)
end

local function strip_block(text)
  local b = text:find(M.begin_marker, 1, true)
  if not b then
    return text, false
  end
  local e = text:find(M.end_marker, b, true)
  if not e then
    errors.raise("EINVAL", "~/.ssh/config has banger's start marker without its end marker; fix it by hand")
  end
  local after = e + #M.end_marker
  if text:sub(after, after) == "\n" then
    after = after + 1
  end
  return text:sub(1, b - 1) .. text:sub(after), true
end

function M.install()
  local p = M.paths()
  errors.check(fs.mkdir(p.included:match("^(.*)/"), 448, true))
  errors.check(fs.write_atomic(p.included, M.included_text(), tonumber("600", 8)))
  errors.check(fs.mkdir_private(p.user:match("^(.*)/")))
  local file, mode = target(p.user)
  local current = fs.read(file) or ""
  local rest = strip_block(current)
  local block = M.begin_marker .. "\n" .. "Include " .. p.included .. "\n" .. M.end_marker .. "\n"
  errors.check(fs.write_atomic(file, block .. rest, mode))
  return { config = file, included = p.included }
end

function M.uninstall()
  local p = M.paths()
  local file = target(p.user)
  local removed = false
  local current = fs.read(file)
  if current then
    local rest, had = strip_block(current)
    if had then
      local _, mode = target(p.user)
      errors.check(fs.write_atomic(file, rest, mode))
      removed = true
    end
  end
  if fs.exists(p.included) then
    errors.check(fs.remove(p.included))
    removed = true
  end
  return { config = file, removed = removed }
end

return M
