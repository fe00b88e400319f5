-- banger run examples/tiny-image.lua [KERNEL.deb]
-- Sets up what `banger vm run` needs on a fresh machine until the Debian
-- golden image lands (issue 7): Debian's cloud kernel (fetched with
-- apt-get download unless a package is given) imported as "debian-cloud",
-- and a tiny busybox + banger-agent image built with the ext4 engine,
-- registered as "tiny" and made the default. Does nothing that is already done.
local ui = banger.ui
local source = banger.sys.lua_dir() .. "/.."
local build = banger.sys.exe():match("^(.*)/[^/]+$")

if not pcall(banger.kernels.require, "debian-cloud") then
  local deb = arg[1]
  if not deb then
    ui.info("fetching Debian's cloud kernel package with apt-get download ...")
    local r = banger.proc.run({ source .. "/tests/fixtures/kernel-deb.sh", timeout_ms = 600000 })
    if r.code ~= 0 then
      banger.errors.raise("EFETCH", "could not download the kernel package: " .. r.stderr)
    end
    deb = r.stdout:gsub("%s+$", "")
  end
  ui.info("importing the kernel from " .. deb)
  banger.kernel.import({ source = deb, name = "debian-cloud", kernels_dir = banger.kernels.dir(), distro = "debian" })
end

if not banger.images.get("tiny") then
  ui.info("building the 'tiny' image (busybox + banger-agent) with the ext4 engine ...")
  local tmp = banger.fs.mkdtemp("banger-tiny-")
  local img = tmp .. "/tiny.ext4"
  local make = assert(loadfile(source .. "/tests/lua/fixtures/make_rootfs.lua", "t", setmetatable({
    arg = { img, build .. "/cli/banger-agent/banger-agent" }, banger = banger }, { __index = _G })))
  make()
  banger.images.import_file(img, { name = "tiny", kernel = "debian-cloud", is_default = not banger.images.default() })
  banger.fs.remove_tree(tmp)
end
if not banger.images.default() then
  banger.images.set_default("tiny")
end
ui.info("ready: kernel debian-cloud, image tiny" .. ((banger.images.default() or {}).name == "tiny" and " (default)" or ""))
