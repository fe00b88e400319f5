--- banger.images: the image store (rows in `images`, files under the state dir).
local errors = require("banger.errors")
local state = require("banger.state")
local fs = require("banger.native.fs")
local ext4 = require("banger.native.ext4")

local M = {}

function M.dir()
  return state.layout().state .. "/images"
end

function M.get(name)
  return state.db():query("SELECT * FROM images WHERE name = ?", name)[1]
end

function M.default()
  return state.db():query("SELECT * FROM images WHERE is_default = 1")[1]
end

function M.require(name)
  if type(name) ~= "string" then
    errors.raise("EINVAL", "invalid image name: expected a string, got " .. type(name))
  end
  M.validate_name(name)
  local row = M.get(name)
  if not row then
    errors.raise("ENOENT", "no image named '" .. tostring(name) .. "' (see 'banger image list', 'banger image pull')")
  end
  return row
end

--- The named image, or the default one when no name is given.
function M.pick(name)
  if name then
    return M.require(name)
  end
  local d = M.default()
  if d then
    return d
  end
  -- First use: build the default image, as `banger image build debian` does.
  io.stderr:write("banger: no default image yet: building the Debian 12 image from Debian packages (once, about a minute) ...\n")
  require("banger.debian_image").build()
  d = M.default()
  if not d then
    errors.raise("ENOENT", "building the default image did not register one")
  end
  return d
end

--- Marks `name` as the default image (and no other).
function M.set_default(name)
  M.require(name)
  state.transaction(function(db)
    db:exec("UPDATE images SET is_default = 0 WHERE is_default = 1")
    db:exec("UPDATE images SET is_default = 1 WHERE name = ?", name)
  end)
end

function M.list()
  return state.db():query("SELECT * FROM images ORDER BY name")
end

--- Records an image whose rootfs file is already in place.
function M.register(fields)
  fields.customize = nil
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  state.transaction(function(db)
    if fields.is_default then
      db:exec("UPDATE images SET is_default = 0 WHERE is_default = 1")
    end
    db:exec([[INSERT INTO images (name, source_ref, digest, size_bytes, rootfs_path, kernel, is_default, init, created_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      fields.name, fields.source_ref, fields.digest, fields.size_bytes or 0, fields.rootfs_path, fields.kernel,
      fields.is_default and 1 or 0, fields.init or require("banger.native.json").null, now)
  end)
  return M.get(fields.name)
end

--- Image names follow VM names' rules (they appear in commands and paths).
function M.validate_name(name)
  local why = require("banger.config").image_name(name)
  if why then
    errors.raise("EINVAL", why)
  end
end

-- Publishes a new image: `build(tmp)` writes the ext4 file at a temporary
-- path in the store, which is fsynced, renamed into place (the directory
-- fsynced too: fs.publish) and registered. A failure at any step leaves
-- neither a row nor a stray file; a crash leaves no half-written image.
local function publish(fields, build)
  M.validate_name(fields.name)
  if M.get(fields.name) then
    errors.raise("EEXIST", "an image named '" .. fields.name .. "' already exists")
  end
  fs.mkdir(M.dir(), 448, true)
  local final = M.dir() .. "/" .. fields.name .. ".ext4"
  local tmp = final .. ".tmp-" .. tostring(require("banger.native.sys").getpid())
  local ok, err = pcall(function()
    build(tmp)
    errors.check(fs.publish(tmp, final))
    fields.rootfs_path = final
    fields.size_bytes = errors.check(fs.stat(final)).size
    M.register(fields)
  end)
  if not ok then
    fs.remove(tmp)
    if not M.get(fields.name) then
      fs.remove(final)
    end
    error(err, 0)
  end
  return M.get(fields.name)
end

--- Copies an ext4 file into the image store and registers it.
function M.import_file(src, fields)
  local probe = ext4.open(src)
  if not probe then
    errors.raise("EINVAL", src .. " is not an ext4 filesystem image")
  end
  probe:close()
  return publish(fields, function(tmp)
    -- A reflink where the filesystem can, else a sparse copy.
    errors.check(require("banger.native.vmm").clone_disk(errors.check(fs.realpath(src)), tmp))
  end)
end

--- Captures a stopped VM's root disk as a new image (a provisioned
-- project image): the qcow2 overlay is flattened into a raw ext4 file.
function M.capture(vm_row, fields)
  local dir = require("banger.vms").dir(vm_row)
  local base = M.get(vm_row.image)
  if fields.init == nil and base then
    fields.init = base.init
  end
  return publish(fields, function(tmp)
    local qcow = dir .. "/root.qcow2"
    if not fs.exists(qcow) then
      errors.check(require("banger.native.vmm").clone_disk(dir .. "/root.img", tmp))
      return
    end
    local r = errors.check(require("banger.native.proc").run({ "qemu-img", "convert", "-O", "raw", qcow, tmp }))
    if r.code ~= 0 then
      errors.raise("EIO", "capturing the root disk of " .. vm_row.name .. ": " .. r.stderr)
    end
  end)
end

local INIT_LINK = "/usr/local/libexec/banger/banger-init"

-- Does the image have an init the kernel could run? /sbin/init, followed
-- through symlinks inside the image (in any component: with merged /usr,
-- /sbin itself is one), must end at an executable file.
local function usable_init(img)
  local pending, done = { "sbin", "init" }, {}
  for _ = 1, 40 do
    if #pending == 0 then
      local ok, st = pcall(img.stat, img, "/" .. table.concat(done, "/"))
      return ok and st.type == "file" and (st.mode & tonumber("111", 8)) ~= 0
    end
    local part = table.remove(pending, 1)
    if part == ".." then
      table.remove(done)
    elseif part ~= "." and part ~= "" then
      done[#done + 1] = part
      local ok, st = pcall(img.stat, img, "/" .. table.concat(done, "/"))
      if not ok then
        return false
      end
      if st.type == "symlink" then
        table.remove(done)
        if st.target:sub(1, 1) == "/" then
          done = {}
        end
        local parts = {}
        for p in st.target:gmatch("[^/]+") do
          parts[#parts + 1] = p
        end
        table.move(pending, 1, #pending, #parts + 1, parts)
        pending = parts
      end
    end
  end
  return false
end

--- Makes a pulled image bootable as a banger VM: the guest agent (with its
-- systemd unit, masked device-waiting units and sshd drop-in, as in the
-- golden image) and banger-init, which is chosen as the image's init when
-- it has none of its own. Returns the init path to record, or nil.
function M.make_bootable(img)
  require("banger.golden").customize(img)
  if img:exists(INIT_LINK) then
    img:remove(INIT_LINK)
  end
  img:symlink("banger-agent", INIT_LINK, {})
  if not usable_init(img) then
    return INIT_LINK
  end
  return nil
end

--- Size for an image holding `content` bytes: content plus headroom, with a
-- floor, so small images still boot and big ones do not run out of space.
function M.size_for(content, headroom_pct, floor_bytes)
  local size = math.floor(content * (100 + (headroom_pct or 30)) / 100)
  size = math.max(size, floor_bytes or 256 * 1024 * 1024)
  return (size + 1048575) // 1048576 * 1048576
end

M.MAX_HEADROOM = 1000

--- Free space added to an image, in percent of its content: nil (the
-- default) or an integer 0..MAX_HEADROOM. Returns why not, or nil.
function M.headroom_problem(pct)
  if pct ~= nil and (math.type(pct) ~= "integer" or pct < 0 or pct > M.MAX_HEADROOM) then
    return "must be a whole percentage from 0 to " .. M.MAX_HEADROOM .. ", got " .. tostring(pct)
  end
end

--- Raises unless `path` can be a layer: a disk image is not a tar, though
-- libarchive reads an ext4 file's zeroed first block as an empty archive.
function M.check_layer_file(path)
  local f = io.open(path, "rb")
  if not f then
    errors.check(fs.stat(path)) -- the reason it cannot be read
    errors.raise("EACCES", "cannot read " .. path)
  end
  local head = f:read(4) or ""
  f:seek("set", 1080)
  local magic = f:read(2)
  f:close()
  if magic == "\x53\xef" then
    errors.raise("EINVAL", path .. " is an ext4 filesystem image, not a tar archive (adopt it with "
      .. "'banger image register --rootfs " .. path .. " --name NAME')")
  elseif head == "QFI\xfb" then
    errors.raise("EINVAL", path .. " is a qcow2 disk image, not a tar archive")
  end
end

--- An image may grow to this while its layers are written (a bound on what
-- a hostile layer's declared sizes can make banger allocate).
M.GROW_LIMIT = 256 * 1024 * 1024 * 1024

--- The size an image starts at, before its layers are read. Their unpacked
-- size is unknown until then (an OCI manifest gives compressed sizes), so it
-- starts generous (sparse, without a journal: cheap), grows if a layer needs
-- more, and is fitted to its content at the end.
function M.initial_size(estimate)
  local size = math.max(1024 * 1024 * 1024, 4 * (estimate or 0))
  return (size + 1048575) // 1048576 * 1048576
end

--- Builds an image from layers, oldest first, with the ext4 engine: tar
-- paths, or functions returning a stream (oci's pull:open). Each layer is
-- read once, straight into the image; then the image is fitted to
-- size_for(content) and gets its journal. opts: estimate= (compressed bytes
-- of all layers; default: the files' sizes), on_progress(i, entries, bytes),
-- after_layers() (runs before anything is published: a pull checks its
-- downloads there).
function M.import_layers(layers, fields, on_layer, opts)
  opts = opts or {}
  M.validate_name(fields.name)
  local why = M.headroom_problem(fields.headroom_pct)
  if why then
    errors.raise("EINVAL", "headroom " .. why)
  end
  if #layers == 0 then
    errors.raise("EINVAL", "no layers to import")
  end
  for _, l in ipairs(layers) do
    if type(l) == "string" then
      M.check_layer_file(l)
    end
  end
  local estimate = opts.estimate
  if not estimate then
    estimate = 0
    for _, l in ipairs(layers) do
      local st = type(l) == "string" and fs.stat(l)
      estimate = estimate + (st and st.size or 0)
    end
  end
  return publish(fields, function(tmp)
    local img = errors.wrap_handle(errors.check(ext4.create(tmp, M.initial_size(estimate),
      { journal = false, grow_to = M.GROW_LIMIT })))
    local content, entries = 0, 0
    for i, l in ipairs(layers) do
      local src = type(l) == "function" and errors.unwrap(l(i)) or l
      local st = img:apply_layer(src, {
        on_progress = opts.on_progress and function(entries, bytes)
          opts.on_progress(i, entries, bytes)
        end,
      })
      content, entries = content + st.content, entries + st.entries
      if on_layer then
        on_layer(i, l, st)
      end
    end
    if entries == 0 then
      errors.raise("EINVAL", "the layers hold no files: nothing to boot (are they tar archives?)")
    end
    if opts.after_layers then
      opts.after_layers()
    end
    img:resize(M.size_for(content, fields.headroom_pct))
    img:add_journal()
    if fields.customize then
      fields.customize(img)
    end
    img:close()
  end)
end

--- The name `image pull` gives an image of reference `ref` when none is
-- asked for: the repository's last part and the tag, in image-name spelling
-- (docker.io/library/debian:bookworm -> debian-bookworm).
function M.name_for_ref(ref)
  return ((ref.repository:match("([^/]+)$") .. "-" .. (ref.tag or "latest")):lower()
    :gsub("[^a-z0-9-]", "-"):gsub("^[^a-z]+", ""))
end

--- Pulls OCI image `opts.ref` into an ext4 image and registers it: the
-- layers download in parallel into the verified blob cache while each is
-- unpacked into the image as it arrives (a layer counts only once its
-- digest checked out at its end). Nothing is registered and no file is
-- left on failure or Ctrl-C. Progress goes to stderr. Returns the row.
-- opts: ref, name, kernel, platform ("linux/amd64"), parallel (4), default.
function M.pull(opts)
  local ui = require("banger.ui")
  local units = require("banger.units")
  local oci = require("banger.oci")
  local ref = oci.parse_ref(opts.ref)
  local name = opts.name or M.name_for_ref(ref)
  M.validate_name(name)
  if M.get(name) then  -- before any download
    errors.raise("EEXIST", "an image named '" .. name .. "' already exists")
  end
  local cache = state.layout().cache .. "/oci"
  local resolved = oci.resolve(opts.ref, { cache = cache, platform = opts.platform or "linux/amd64" })
  ui.info(string.format("%s: %s, %d layer(s)", opts.ref, resolved.digest, #resolved.layers))
  local pull <close> = oci.pull(resolved, { cache = cache, parallel = opts.parallel or 4 })
  local layers, estimate = {}, 0
  for i, l in ipairs(resolved.layers) do
    layers[i] = function()
      return pull:open(i)
    end
    estimate = estimate + l.size
  end
  local progress = ui.percent_progress(function(pct, _, total)
    return string.format("downloaded %3d%% of %s", pct, units.format_bytes(total))
  end)
  local fields = { name = name, kernel = opts.kernel, is_default = opts.default, source_ref = opts.ref,
    digest = resolved.digest }
  fields.customize = function(img)
    fields.init = M.make_bootable(img)
    if fields.init then
      ui.info("  no init in the image: VMs boot it with banger-init (agent as PID 1)")
    end
  end
  return M.import_layers(layers, fields, function(i, _, st)
    progress.clear()
    ui.info(string.format("  layer %d/%d: %d entries, %s", i, #layers, st.entries, units.format_bytes(st.bytes)))
  end, {
    estimate = estimate,
    on_progress = progress.update and function() progress.update(pull:progress()) end,
    -- Every layer ended verified; this also waits for the cache's renames.
    after_layers = function()
      pull:wait()
    end,
  })
end

--- Raises EBUSY unless image `name` can be removed: no VM and no snapshot
-- (whose root layer is an overlay of the image file) uses it.
function M.check_removable(name)
  local users = state.db():query("SELECT name FROM vms WHERE image = ?", name)
  if #users > 0 then
    errors.raise("EBUSY", "image '" .. name .. "' is used by VM '" .. users[1].name .. "' (delete the VM first)")
  end
  -- a snapshot's root layer is an overlay of the image file
  local snaps = state.db():query("SELECT name FROM snapshots WHERE image = ?", name)
  if #snaps > 0 then
    errors.raise("EBUSY", "image '" .. name .. "' is used by snapshot '" .. snaps[1].name
      .. "' (delete it first: banger snapshot delete " .. snaps[1].name .. ")")
  end
end

function M.remove(name)
  local row = M.require(name)
  M.check_removable(name)
  state.db():exec("DELETE FROM images WHERE name = ?", name)
  fs.remove(row.rootfs_path)
end

return M
