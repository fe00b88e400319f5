-- banger trust [PATH]: let a project's own code (.banger/recipes, banger.lua)
-- run on this host. It is the one command no project can override.
local trust = banger.trust
local ui = banger.ui

local function root_for(path)
  local start = path or banger.fs.cwd()
  local root = trust.find_root(start)
  if not root then
    banger.errors.raise("ENOENT", (path or "this directory") .. " is not in a project (no banger.lua or "
      .. trust.code_dir .. "/ here or up to the repository's root)", { exit = 1 })
  end
  return root
end

local function show_manifest(manifest)
  for _, e in ipairs(manifest.entries) do
    if e.kind ~= "directory" then
      local what = e.kind == "file" and ("sha256:" .. e.sha256) or (e.kind .. (e.kind == "symlink" and " (never loaded)" or ""))
      ui.print(string.format("  %-48s %s", e.path, what))
    end
  end
end

local function manifest_json(manifest, trusted)
  local files = {}
  for _, e in ipairs(manifest.entries) do
    if e.kind ~= "directory" then
      files[#files + 1] = { path = e.path, kind = e.kind, sha256 = e.sha256 or banger.json.null }
    end
  end
  return { root = manifest.root, digest = manifest.digest, trusted = trusted, files = banger.json.array(files) }
end

return {
  summary = "trust a project's own code (.banger/recipes, banger.lua) to run on this host",
  description = "A project's recipe overrides and its banger.lua run on your machine, so banger uses them only\n"
    .. "after you have read them and trusted that exact content. Any change to them (a file edited,\n"
    .. "added or removed) makes the project untrusted again. See docs/security.md.",
  json = true,
  args = { { "path", complete = "directory", help = "a directory of the project (default: the current one)" } },
  flags = {
    { "dry-run", type = "boolean", help = "show what would be trusted, record nothing" },
    { "revoke", type = "boolean", help = "stop trusting the project" },
    { "list", type = "boolean", help = "list trusted projects and whether they changed since" },
  },
  examples = { "banger trust", "banger trust --dry-run ../other-repo", "banger trust --list", "banger trust --revoke" },
  run = function(opts)
    if opts.list then
      local rows = trust.list()
      ui.emit(opts, banger.json.array(rows), function(list)
        if #list == 0 then
          ui.print("no trusted projects")
          return
        end
        ui.table(list, { { "STATUS", "status" }, { "FILES", "files" }, { "TRUSTED AT", "trusted_at" }, { "PROJECT", "root" } })
      end, "array of trusted_project")
      return 0
    end
    local root = root_for(opts.path)
    if opts.revoke then
      local was = trust.revoke(root)
      ui.emit(opts, { root = root, revoked = was }, function()
        ui.print(was and ("no longer trusted: " .. root) or (root .. " was not trusted"))
      end, "trust_revoked")
      return 0
    end
    local status, manifest = trust.status(root)
    if opts.dry_run then
      ui.emit(opts, manifest_json(manifest, status == "trusted"), function()
        ui.print("project " .. root .. " (" .. status .. ")")
        show_manifest(manifest)
      end, "trust")
      return status == "trusted" and 0 or 1
    end
    manifest = trust.allow(root)
    ui.emit(opts, manifest_json(manifest, true), function()
      ui.print("project " .. root)
      show_manifest(manifest)
      ui.print("trusted; any change to these files makes the project untrusted again")
    end, "trust")
    return 0
  end,
}
