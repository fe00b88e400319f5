--- banger.kernel_catalog: kernels named in a catalog, downloaded, checked
-- against the catalog's sha256 and imported (`kernel pull`, and the default
-- kernel when the host has no apt).
--
-- A catalog is JSON: { "kernels": [ { "name": "...", "url": "...", "sha256": "...",
--   "version": "...", "distro": "...", "size": N } ] }. "url" may be relative
-- to the catalog's own URL; the artifact is anything `kernel import` takes
-- (a Debian kernel package, a vmlinuz). The sha256 is required and checked
-- before anything is imported.
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
  local dir = kernels.dir()
  fs.mkdir(dir, 493, true)
  local artifact = entry.url:match("([^/?#]+)$") or "kernel"
  local tmp = dir .. "/.pull-" .. name .. "-" .. require("banger.native.sys").getpid() .. "-" .. artifact
  local cleanup <close> = setmetatable({}, { __close = function() pcall(fs.remove, tmp) end })
  local source = M.resolve_url(url, entry.url)
  ui.info(string.format("downloading %s (%s)", source, entry.size and units.format_bytes(entry.size) or "size unknown"))
  local progress = ui.percent_progress(function(pct, done)
    return string.format("%3d%% %s", pct, units.format_bytes(done))
  end)
  errors.check(require("banger.native.http").download({
    url = source, path = tmp, sha256 = entry.sha256:lower(), max_bytes = entry.size and entry.size * 2 or nil,
    on_progress = progress.update,
  }))
  progress.finish()
  kernels.import({
    source = tmp, name = name, kernels_dir = dir, distro = entry.distro or "", origin = source,
    replace = opts.replace,
  })
  return errors.check(require("banger.native.kernel").show(dir, name))
end

return M
