-- banger image build debian: a Debian 12 golden image from Debian packages.
-- mmdebstrap writes a root filesystem tar; the ext4 engine turns it into an
-- image (no mount); banger adds its agent, sshd drop-in and unit masks; the
-- result is registered and, unless told otherwise, made the default.
return {
  summary = "build the Debian 12 golden image (mmdebstrap + the ext4 engine)",
  json = true,
  flags = {
    { "name", type = "string", default = "debian-12", help = "image name" },
    { "suite", type = "string", default = "bookworm", help = "Debian suite" },
    { "kernel", type = "string", default = "debian-cloud", help = "kernel recorded with the image" },
    { "package", type = "list", help = "extra package (adds to config image.packages)" },
    { "tar", type = "string", help = "use this mmdebstrap tar instead of running mmdebstrap (cache)" },
    { "no-default", type = "boolean", help = "do not make it the default image" },
    { "replace", type = "boolean", help = "replace an existing image of that name" },
  },
  run = function(opts)
    local ui = banger.ui
    local stage = ui.stages()
    local packages = { "systemd-sysv", "openssh-server", "ca-certificates", "git", "curl", "less", "iproute2" }
    for _, p in ipairs(banger.config.get().image.packages) do
      packages[#packages + 1] = p
    end
    for _, p in ipairs(opts.package) do
      packages[#packages + 1] = p
    end
    local tmpdir = banger.fs.mkdtemp("banger-debian-")
    local cleanup <close> = setmetatable({}, { __close = function() pcall(banger.fs.remove_tree, tmpdir) end })
    local tar = opts.tar
    if not tar then
      banger.tools.require("mmdebstrap")
      if banger.sys.getuid() ~= 0 then
        -- mmdebstrap's unshare mode maps the user's subordinate ids with
        -- these; without them it only says it cannot pick a chroot mode.
        banger.tools.require("newuidmap")
        banger.tools.require("newgidmap")
      end
      tar = tmpdir .. "/rootfs.tar"
      stage("mmdebstrap", opts.suite .. " with " .. table.concat(packages, ","))
      local argv = { "mmdebstrap", "--variant=minbase", "--include=" .. table.concat(packages, ","), "--quiet",
        opts.suite, tar, timeout_ms = 1800000 }
      local r = banger.proc.run(argv)
      if r.code ~= 0 then
        banger.errors.raise("EIO", "mmdebstrap failed (exit " .. r.code .. "): " .. r.stderr:sub(-2000))
      end
    end
    if opts.replace and banger.images.get(opts.name) then
      banger.images.remove(opts.name)
    end
    stage("ext4", "writing " .. tar .. " into the image")
    local row = banger.images.import_layers({ tar }, {
      name = opts.name, kernel = opts.kernel, source_ref = "mmdebstrap:" .. opts.suite,
      is_default = not opts.no_default, customize = banger.golden.customize,
    })
    stage("done", row.name)
    ui.emit(opts, row, function(r)
      ui.print(string.format("built %s (%s)%s", r.name, banger.units.format_bytes(r.size_bytes),
        r.is_default == 1 and ", the default image" or ""))
    end, "image")
  end,
}
