-- banger kernel pull NAME: download a kernel named in a catalog and import it.
--
-- A catalog is JSON: { "kernels": [ { "name": "...", "url": "...", "sha256": "...",
--   "version": "...", "distro": "...", "size": N } ] }. "url" may be relative
-- to the catalog's own URL; the artifact is anything `kernel import` takes
-- (a Debian kernel package, a vmlinuz). The sha256 is required and checked
-- before anything is imported.
local function resolve(base, url)
  if url:match("^%a[%w+.-]*://") then
    return url
  end
  return (base:gsub("[^/]*$", "")) .. url
end

return {
  summary = "download a kernel from a catalog and import it",
  json = true,
  args = { { "name", required = true, help = "the kernel's name in the catalog" } },
  flags = {
    { "catalog", type = "string", help = "catalog URL (default: config kernel.catalog_url)" },
    { "as", type = "string", help = "local name (default: the catalog name)" },
    { "replace", type = "boolean", help = "replace a kernel of the same name" },
  },
  run = function(opts)
    local url = opts.catalog or banger.config.get().kernel.catalog_url
    if not url then
      banger.errors.usage("no catalog: pass --catalog URL or set kernel.catalog_url in config.lua", "kernel pull")
    end
    local ok, catalog = pcall(banger.json.decode, banger.http.fetch(url))
    if not ok or type(catalog) ~= "table" or type(catalog.kernels) ~= "table" then
      banger.errors.raise("EINVAL", url .. " is not a kernel catalog (expected {\"kernels\": [...]})")
    end
    local entry
    for _, k in ipairs(catalog.kernels) do
      if k.name == opts.name then
        entry = k
      end
    end
    if not entry then
      banger.errors.raise("ENOENT", "no kernel '" .. opts.name .. "' in " .. url)
    end
    if type(entry.url) ~= "string" or type(entry.sha256) ~= "string" or not entry.sha256:match("^%x+$")
      or #entry.sha256 ~= 64 then
      banger.errors.raise("EINVAL", url .. ": entry '" .. opts.name .. "' needs url and a sha256")
    end
    local name = opts.as or entry.name
    banger.kernel.validate_name(name)
    local dir = banger.kernels.dir()
    banger.fs.mkdir(dir, 493, true)
    local artifact = entry.url:match("([^/?#]+)$") or "kernel"
    local tmp = dir .. "/.pull-" .. name .. "-" .. banger.sys.getpid() .. "-" .. artifact
    local cleanup <close> = setmetatable({}, { __close = function() pcall(banger.fs.remove, tmp) end })
    local source = resolve(url, entry.url)
    banger.ui.info(string.format("downloading %s (%s)", source,
      entry.size and banger.units.format_bytes(entry.size) or "size unknown"))
    local last = -1
    banger.http.download({
      url = source, path = tmp, sha256 = entry.sha256:lower(), max_bytes = entry.size and entry.size * 2 or nil,
      on_progress = banger.ui.is_tty(2) and function(done, total)
        local pct = total > 0 and math.floor(done * 100 / total) or 0
        if pct ~= last then
          last = pct
          io.stderr:write(string.format("\r  %3d%% %s", pct, banger.units.format_bytes(done)))
        end
      end or nil,
    })
    if last >= 0 then
      io.stderr:write("\n")
    end
    banger.kernels.import({
      source = tmp, name = name, kernels_dir = dir, distro = entry.distro or "", origin = source,
      replace = opts.replace,
    })
    local m = banger.kernel.show(dir, name)
    banger.ui.emit(opts, m, function(k)
      banger.ui.print(string.format("%s: Linux %s (sha256 verified)", k.name, k.version))
    end, "kernel")
  end,
}
