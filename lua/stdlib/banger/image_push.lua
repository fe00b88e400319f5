--- banger.image_push: `image push`: an image's ext4 tree as a one-layer OCI
-- image in a registry. The layer is read from the image file through the ext4
-- engine (no mount, no root), written as a pax tar compressed with igzip
-- into a spool file in banger's cache (its digest and diff_id computed while
-- it is written), then uploaded with the image config and the manifest.
-- Any image goes by its name: pulled, built, imported, registered, or
-- captured from a banger.lua provision step (`p-<repo>-<hash>`).
local errors = require("banger.errors")
local fs = require("banger.native.fs")
local sys = require("banger.native.sys")
local state = require("banger.state")

local M = {}

--- Where layers are spooled: `<cache>/push`. A spool is
-- `layer-<pid>-<n>.tar.gz`; it is removed when the push ends, Ctrl-C
-- included, and one left by a process that died is removed by the next
-- push (the pid in its name is no longer running).
---@return string
function M.spool_dir()
  return state.layout().cache .. "/push"
end

local function pid_alive(pid)
  return fs.exists("/proc/" .. pid)
end

--- Removes spools of push processes that are gone; returns how many.
---@return integer
function M.clean_stale()
  local dir = M.spool_dir()
  local n = 0
  for _, name in ipairs(fs.exists(dir) and (fs.list(dir) or {}) or {}) do
    local pid = name:match("^layer%-(%d+)%-%d+%.tar%.gz$")
    if pid and not pid_alive(pid) then
      fs.remove(dir .. "/" .. name)
      n = n + 1
    end
  end
  return n
end

-- GOARCH names, which OCI configs use.
local ARCH = { x86_64 = "amd64", aarch64 = "arm64", armv7l = "arm", i686 = "386", ppc64le = "ppc64le", s390x = "s390x",
  riscv64 = "riscv64" }

--- The OCI image config of a one-layer image (exact JSON bytes; keys sorted,
-- no timestamp, so the same image gives the same config digest). banger
-- records no entrypoint or environment for its images, so there is none.
---@param diff_id string sha256:<hex> of the uncompressed layer
---@return string
function M.config_json(diff_id)
  local machine = sys.uname().machine
  return require("banger.native.json").encode({
    architecture = ARCH[machine] or machine,
    os = "linux",
    rootfs = { type = "layers", diff_ids = { diff_id } },
  })
end

--- Pushes image `opts.name` to `opts.ref` (registry/repository:tag), or with
-- `opts.dry_run` only builds its layer and reports it. Progress goes to
-- stderr. Returns { image, ref, manifest_digest, layer_digest, diff_id, size,
-- tar_bytes, entries, skipped, layer_uploaded, dry_run }.
---@param opts table name, ref, dry_run
---@return table
function M.push(opts)
  local ui = require("banger.ui")
  local units = require("banger.units")
  local oci = require("banger.oci")
  local row = require("banger.images").require(opts.name)
  local ref
  if opts.ref then
    ref = oci.parse_ref(opts.ref)
    if ref.digest then
      errors.raise("EINVAL", "image push needs a tag to push to, not a digest: " .. opts.ref)
    end
  elseif not opts.dry_run then
    errors.usage("image push needs a reference to push to (REGISTRY/REPOSITORY:TAG)", "image push")
  end
  if not fs.exists(row.rootfs_path) then
    errors.raise("ENOENT", "image '" .. row.name .. "': its file " .. row.rootfs_path .. " is missing")
  end
  local dir = M.spool_dir()
  errors.check(fs.mkdir(dir, 448, true))
  M.clean_stale()
  local spool = string.format("%s/layer-%d-%d.tar.gz", dir, sys.getpid(), sys.monotonic_ms())
  local cleanup <close> = setmetatable({}, { __close = function()
    fs.remove(spool)
  end })

  local built = 0
  local layer = oci.build_layer(row.rootfs_path, spool, {
    on_progress = ui.is_tty(2) and function(entries, bytes)
      built = entries
      io.stderr:write(string.format("\r  writing the layer: %d entries, %s", entries, units.format_bytes(bytes)))
    end or nil,
  })
  if built > 0 then
    io.stderr:write("\r\27[K")
  end
  for _, p in ipairs(layer.skipped) do
    ui.warn("left out " .. p .. ": a socket cannot be stored in a layer")
  end
  ui.info(string.format("layer of image %s: %d entries, %s (%s uncompressed)", row.name, layer.entries,
    units.format_bytes(layer.size), units.format_bytes(layer.tar_bytes)))
  local out = { image = row.name, ref = ref and ref.ref, layer_digest = layer.digest, diff_id = layer.diff_id,
    size = layer.size, tar_bytes = layer.tar_bytes, entries = layer.entries, skipped = layer.skipped,
    layer_uploaded = false, dry_run = opts.dry_run == true }
  if opts.dry_run then
    return out
  end

  local progress = ui.percent_progress(function(pct, _, total)
    return string.format("uploaded %3d%% of %s", pct, units.format_bytes(total))
  end)
  local r = oci.push(ref.ref, {
    layer = { path = spool, digest = layer.digest, size = layer.size },
    config = M.config_json(layer.diff_id),
    on_progress = progress.update,
  })
  progress.finish()
  out.manifest_digest = r.digest
  out.layer_uploaded = r.layer_uploaded
  if not r.layer_uploaded then
    ui.info("  the registry had the layer already")
  end
  return out
end

return M
