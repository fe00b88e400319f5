--- banger.debian_image: the Debian golden image from Debian packages.
-- mmdebstrap writes a root filesystem tar; the ext4 engine turns it into an
-- image (no mount); banger.golden adds the agent, sshd drop-in and unit
-- masks; the result is registered (banger.images) and, unless told
-- otherwise, made the default. `image build debian` and the first VM on a
-- machine without a default image both build it here.
local errors = require("banger.errors")
local fs = require("banger.native.fs")

local M = {}

M.base_packages = { "systemd-sysv", "openssh-server", "ca-certificates", "git", "curl", "less", "iproute2" }

--- The packages the image gets: the base ones, config image.packages, then `extra`.
---@param extra string[]|nil
---@return string[]
function M.packages(extra)
  local packages = {}
  for _, list in ipairs({ M.base_packages, require("banger.config").get().image.packages, extra or {} }) do
    for _, p in ipairs(list) do
      packages[#packages + 1] = p
    end
  end
  return packages
end

--- Builds and registers the image; returns its row. opts: name
-- ("debian-12"), suite ("bookworm"), kernel ("debian-cloud"), packages
-- (extra), tar (an mmdebstrap tar to use instead of running mmdebstrap),
-- default (true: make it the default image), replace (remove an image of
-- that name first), stage (a banger.ui.stages printer; default: a new one).
---@param opts { name: string?, suite: string?, kernel: string?, packages: string[]?, tar: string?, default: boolean?, replace: boolean?, stage: function? }|nil
---@return table row the image row
function M.build(opts)
  opts = opts or {}
  local name, suite = opts.name or "debian-12", opts.suite or "bookworm"
  local stage = opts.stage or require("banger.ui").stages()
  local images = require("banger.images")
  local packages = M.packages(opts.packages)
  local tmpdir = errors.check(fs.mkdtemp("banger-debian-"))
  local cleanup <close> = setmetatable({}, { __close = function() pcall(fs.remove_tree, tmpdir) end })
  if opts.replace and images.get(name) then
    images.check_removable(name)  -- before minutes of mmdebstrap, not after
  end
  local tar = opts.tar
  if not tar then
    local tools = require("banger.tools")
    tools.require("mmdebstrap")
    if require("banger.native.sys").getuid() ~= 0 then
      -- mmdebstrap's unshare mode maps the user's subordinate ids with
      -- these; without them it only says it cannot pick a chroot mode.
      tools.require("newuidmap")
      tools.require("newgidmap")
    end
    tar = tmpdir .. "/rootfs.tar"
    stage("mmdebstrap", suite .. " with " .. table.concat(packages, ","))
    local argv = { "mmdebstrap", "--variant=minbase", "--include=" .. table.concat(packages, ","), "--quiet",
      suite, tar, timeout_ms = 1800000 }
    local r = errors.check(require("banger.native.proc").run(argv))
    if r.code ~= 0 then
      errors.raise("EIO", "mmdebstrap failed (exit " .. r.code .. "): " .. r.stderr:sub(-2000))
    end
  end
  if opts.replace and images.get(name) then
    images.remove(name)
  end
  stage("ext4", "writing " .. tar .. " into the image")
  local row = images.import_layers({ tar }, {
    name = name, kernel = opts.kernel or "debian-cloud", source_ref = "mmdebstrap:" .. suite,
    is_default = opts.default ~= false, customize = require("banger.golden").customize,
  })
  stage("done", row.name)
  return row
end

return M
