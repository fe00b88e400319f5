-- banger run examples/first-vm.lua [KERNEL.deb]
-- The quickstart's main job until `banger vm run` lands: import Debian's
-- cloud kernel (fetched with apt-get download unless given), build a tiny
-- busybox + agent root filesystem with the ext4 engine, boot it, run
-- `uname -a` in the guest, and delete the VM again.
local ui = banger.ui
local source = banger.sys.lua_dir() .. "/.."
local build = banger.sys.exe():match("^(.*)/[^/]+$")

local ok = pcall(banger.kernels.require, "debian-cloud")
if not ok then
  local deb = arg[1]
  if not deb then
    ui.info("fetching Debian's cloud kernel package with apt-get download ...")
    local r = banger.proc.run({ source .. "/tests/fixtures/kernel-deb.sh", timeout_ms = 600000 })
    if r.code ~= 0 then
      banger.errors.raise("EFETCH", "could not download the kernel package: " .. r.stderr)
    end
    deb = r.stdout:gsub("%s+$", "")
  end
  ui.info("importing " .. deb)
  banger.kernel.import({ source = deb, name = "debian-cloud", kernels_dir = banger.kernels.dir(), distro = "debian" })
end

if not banger.images.get("tiny") then
  ui.info("building the 'tiny' image (busybox + banger-agent) with the ext4 engine ...")
  local tmp = banger.fs.mkdtemp("banger-first-")
  local img = tmp .. "/tiny.ext4"
  local make = assert(loadfile(source .. "/tests/lua/fixtures/make_rootfs.lua", "t", setmetatable({
    arg = { img, build .. "/cli/banger-agent/banger-agent" }, banger = banger }, { __index = _G })))
  make()
  banger.images.import_file(img, { name = "tiny", kernel = "debian-cloud" })
  banger.fs.remove_tree(tmp)
end

local name = "first-" .. tostring(banger.sys.getpid())
ui.info("booting VM " .. name .. " ...")
banger.vm.create({ name = name, image = "tiny", memory = "256MiB" }, ui.stages())
local cleanup <close> = setmetatable({}, { __close = function() banger.vm.delete(name, true) end })
local r = banger.guest.exec(banger.vms.require(name), { "uname", "-a" })
ui.info(string.format("the guest said the above; exit code %d. Deleting %s.", r.code, name))
return r.code
