--- banger.kernel_catalog: kernels named in a catalog, downloaded, checked
-- against the catalog's sha256 and imported (`kernel pull`, and the default
-- kernel when the host has no apt).
--
-- A catalog is JSON: { "kernels": [ { "name": "...", "url": "...", "sha256": "...",
--   "version": "...", "distro": "...", "size": N } ] }. "url" may be relative
-- to the catalog's own URL; the artifact is anything `kernel import` takes
-- (a Debian kernel package, a vmlinuz), or a kernel bundle written by
-- `kernel export` (format "bundle", or a .tar.zst URL; then "size" and
-- "arch" are required too). The sha256 is required and checked before
-- anything is imported (docs/kernels.md).
local errors = require("banger.errors")
local fs = require("banger.native.fs")

local M = {}

--- `url` as an absolute URL: relative ones are taken from `base`'s directory.
---@param base string the catalog's URL
---@param url string
---@return string
function M.resolve_url(base, url)
  if url:match("^%a[%w+.-]*://") then
    return url
  end
  return (base:gsub("[^/]*$", "")) .. url
end

--- The catalog at `url` (http(s) or file), decoded; EINVAL when it is not one.
---@param url string
---@return table catalog { kernels = {...} }
function M.fetch(url)
  local body = errors.check(require("banger.native.http").fetch(url))
  local ok, catalog = pcall(require("banger.native.json").decode, body)
  if not ok or type(catalog) ~= "table" or type(catalog.kernels) ~= "table" then
    errors.raise("EINVAL", url .. " is not a kernel catalog (expected {\"kernels\": [...]})")
  end
  return catalog
end

--- The entry called `name` in `catalog` (fetched from `url`), checked to
-- have a url and a sha256.
---@param catalog table
---@param url string where the catalog came from (for messages)
---@param name string
---@return table entry
function M.entry(catalog, url, name)
  local entry
  for _, k in ipairs(catalog.kernels) do
    if type(k) == "table" and k.name == name then
      entry = k
    end
  end
  if not entry then
    errors.raise("ENOENT", "no kernel '" .. name .. "' in " .. url)
  end
  if type(entry.url) ~= "string" or type(entry.sha256) ~= "string" or not entry.sha256:match("^%x+$")
    or #entry.sha256 ~= 64 then
    errors.raise("EINVAL", url .. ": entry '" .. name .. "' needs url and a sha256")
  end
  return entry
end

--- Whether a catalog entry names a kernel bundle rather than a package.
---@param entry table
---@return boolean
function M.is_bundle(entry)
  return entry.format == "bundle" or (entry.url:match("%.tar%.zst$") ~= nil)
end

-- A bundle entry's own checks, before anything is downloaded: its size is
-- what the download is held to, and a bundle for another architecture
-- cannot boot here.
local function check_bundle_entry(entry, url)
  if math.type(entry.size) ~= "integer" or entry.size <= 0 then
    errors.raise("EINVAL", url .. ": bundle entry '" .. entry.name .. "' needs its size in bytes")
  end
  local here = require("banger.native.sys").uname().machine
  if entry.arch ~= here then
    errors.raise("EINVAL", url .. ": bundle entry '" .. entry.name .. "' is for " .. tostring(entry.arch)
      .. ", this host is " .. here)
  end
end

--- Writes kernel `opts.name` as `<name>-<arch>.tar.zst` into `opts.output`
-- (default: the current directory) with its catalog entry beside it as
-- `<name>-<arch>.json`; returns the entry and the bundle's path.
---@param opts { name: string, output: string?, level: integer? }
---@return table entry, string path
function M.export(opts)
  local kernels = require("banger.kernels")
  local output = opts.output or fs.cwd()
  fs.mkdir(output, 493, true)
  output = fs.realpath(output)
  local r = errors.check(require("banger.native.kernel").export({
    kernels_dir = kernels.dir(), name = opts.name, output = output, level = opts.level,
  }))
  local m = r.manifest
  local file = r.path:match("([^/]+)$")
  local entry = {
    name = m.name, arch = m.arch, version = m.version, distro = m.distro or "",
    url = file, size = r.size, sha256 = r.sha256, format = "bundle",
  }
  local json = require("banger.native.json")
  errors.check(fs.write_atomic((r.path:gsub("%.tar%.zst$", ".json")), json.encode(entry) .. "\n", 420))
  return entry, r.path
end

--- Downloads kernel `opts.name` from the catalog at `opts.catalog`, checks
-- its sha256 and imports it as `opts.as` (default: the catalog's name),
-- replacing a kernel of that name when `opts.replace`. Nothing is left
-- behind on failure. Progress goes to stderr; returns the manifest.
---@param opts { name: string, catalog: string, as: string?, replace: boolean? }
---@return table manifest
function M.pull(opts)
  local kernels = require("banger.kernels")
  local ui = require("banger.ui")
  local units = require("banger.units")
  local url = opts.catalog
  local entry = M.entry(M.fetch(url), url, opts.name)
  local name = opts.as or entry.name
  errors.check(require("banger.native.kernel").validate_name(name))
  local bundle = M.is_bundle(entry)
  if bundle then
    check_bundle_entry(entry, url)
  end
  local dir = kernels.dir()
  fs.mkdir(dir, 493, true)
  local artifact = entry.url:match("([^/?#]+)$") or "kernel"
  -- A hidden directory the next pull removes if this process dies with it.
  local staging <close> = errors.check(require("banger.native.kernel").staging(dir, name))
  local tmp = staging:path() .. "/" .. artifact
  local source = M.resolve_url(url, entry.url)
  ui.info(string.format("downloading %s (%s)", source, entry.size and units.format_bytes(entry.size) or "size unknown"))
  local progress = ui.percent_progress(function(pct, done)
    return string.format("%3d%% %s", pct, units.format_bytes(done))
  end)
  errors.check(require("banger.native.http").download({
    url = source, path = tmp, sha256 = entry.sha256:lower(), on_progress = progress.update,
    -- A bundle's size is exact; a package's only caps the download at twice it.
    size = bundle and entry.size or nil, max_bytes = (not bundle and entry.size) and entry.size * 2 or nil,
  }))
  progress.finish()
  if bundle then
    errors.check(require("banger.native.kernel").import_bundle({
      source = tmp, name = name, kernels_dir = dir, origin = source, replace = opts.replace,
    }))
    return errors.check(require("banger.native.kernel").show(dir, name))
  end
  kernels.import({
    source = tmp, name = name, kernels_dir = dir, distro = entry.distro or "", origin = source,
    replace = opts.replace,
  })
  return errors.check(require("banger.native.kernel").show(dir, name))
end

return M
