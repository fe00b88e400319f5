-- banger vm run [flags] -- CMD...: a fresh VM with the current git
-- repository copied in, the command run there with its output streamed
-- here, and its exit code returned as banger's.
local ui = banger.ui

-- Cold: the repository goes onto the work disk before the VM first boots
-- (this create's provision_disks hook; no other VM gets it).
local function cold_run(settings, root, files, stages)
  local function copy_repository(row)
    local repo = root:match("([^/]+)$")
    local img <close> = banger.ext4.open(banger.vms.dir(row) .. "/work.ext4", { write = true })
    local n = banger.workspace.copy_to_image(img, root, files, "/" .. repo)
    banger.workspace.record(row, root, "/root/" .. repo, files)
    banger.log.info("workspace", "copied", { vm = row.name, files = n, repo = root })
  end
  return banger.vm.create(settings,
    { on_stage = stages, hooks = { provision_disks = root and copy_repository or nil } })
end

-- Warm: restore the machine's snapshot (or boot it once and take that
-- snapshot before any workspace is attached), then hot-plug a fresh disk
-- holding the repository and mount it at /root/<repo> (docs/snapshots.md).
-- Returns the VM and whether it was restored.
local function warm_run(settings, driver, accel, root, files, stages)
  local warm = banger.warm
  local key = warm.key(settings, driver, accel, settings.file_sync or {})
  local bytes = banger.units.parse_size(settings.work_disk or banger.config.get().vm.work_disk)
  local function attach(row, h)
    if root then
      local path, n = banger.workspace.make_disk(row, root, files, bytes)
      banger.workspace.attach_disk(row, h, path)
      banger.log.info("workspace", "attached", { vm = row.name, files = n, repo = root })
    end
  end
  local function mount(row)
    if root then
      local repo = root:match("([^/]+)$")
      banger.workspace.mount_disk(row, "/root/" .. repo)
      banger.workspace.record(row, root, "/root/" .. repo, files)
    end
  end
  local snap = warm.find(key)
  local row
  if snap then
    banger.log.info("vm run", "restoring warm snapshot", { snapshot = snap.name })
    row = banger.vm.create_from(snap.name, { name = settings.name, before_resume = attach, publish = settings.publish },
      stages)
    mount(row)
    return row, true
  else
    banger.log.info("vm run", "no warm snapshot yet: booting, then taking one", { key = key:sub(1, 12) })
    row = banger.vm.create(settings, stages)
    if not banger.guest.can(row, { "reidentify", "mount" }) then
      -- an image made by an older banger: its agent can neither become a
      -- new machine after a restore nor mount a hot-plugged disk
      ui.warn("the guest agent in image '" .. row.image .. "' predates warm runs, so every run boots cold; "
        .. "rebuild the image (e.g. 'banger image build debian') to get them")
      if root then
        banger.workspace.prepare(row, root, files)
      end
      return row
    end
    local ok, err = pcall(banger.snapshots.take, row.name, { kind = "warm", warm_key = key,
      name = "warm-" .. key:sub(1, 12), stage = stages })
    if not ok then
      -- the run goes on: only the next one will boot cold again
      ui.warn("could not take the warm snapshot (the next run boots cold again): " .. banger.errors.message(err))
    end
    attach(row, banger.vms.load_handles(banger.vms.require(row.name)))
    warm.prune(banger.config.get().vm.warm_snapshots)
  end
  mount(row)
  return row, false
end

-- --dry-run: what the real run looks up before it makes anything (the
-- image, the kernel, the file_sync sources), reported or raised as the run
-- would; nothing is built, downloaded or created, not even the state store.
local function dry_run_check(project, settings)
  local have_state = banger.fs.exists(banger.state.layout().state .. "/banger.db")
  local image
  if settings.image and have_state then
    image = banger.images.require(settings.image)
  elseif settings.image then
    banger.errors.raise("ENOENT", "no image named '" .. settings.image
      .. "' (see 'banger image list', 'banger image pull')")
  elseif have_state then
    image = banger.images.default()
  end
  if not image then
    ui.info("image: no default image yet; the run builds it first")
  else
    local kernel = settings.kernel or image.kernel or banger.config.get().vm.kernel
    if kernel == banger.kernels.default_name and not pcall(banger.kernels.require, kernel) then
      ui.info("image: " .. image.name .. ", kernel: " .. kernel .. " (the run sets it up first)")
    else
      banger.kernels.require(kernel)
      ui.info("image: " .. image.name .. ", kernel: " .. kernel)
    end
  end
  if project then
    ui.info("project: " .. project.path
      .. (project.provision and " (its provision step runs once, into an image of its own)" or ""))
  end
  local sync = {}
  for _, list in ipairs({ banger.config.get().file_sync, settings.file_sync or {} }) do
    table.move(list, 1, #list, #sync + 1, sync)
  end
  for _, e in ipairs(sync) do
    if not banger.fs.exists((e.host:gsub("^~/", (os.getenv("HOME") or "") .. "/"))) then
      ui.warn("file_sync: " .. e.host .. " does not exist on this host; the run skips it")
    end
  end
end

-- The VM flags are vm create's (banger.vm_settings.cli_flags), plus --name.
local flags = { { "name", type = "string", help = "VM name (default: generated)" } }
for _, f in ipairs(banger.vm_settings.cli_flags()) do
  flags[#flags + 1] = f
end
for _, f in ipairs({
  { "rm", type = "boolean", help = "delete the VM when the command ends" },
  { "include-untracked", type = "boolean", help = "also copy untracked files that are not ignored" },
  { "no-workspace", type = "boolean", help = "do not copy the repository" },
  { "dry-run", type = "boolean",
    help = "check what the run would use and list the files it would copy; create nothing" },
  { "cold", type = "boolean", help = "boot the VM instead of restoring the warm snapshot" },
  { "env", short = "e", type = "list", help = "KEY=VALUE for the command's environment" },
}) do
  flags[#flags + 1] = f
end

return {
  summary = "run a command in a fresh VM holding a copy of this git repository",
  args = { { "command", rest = true, help = "the command to run (after --)" } },
  flags = flags,
  examples = {
    "banger vm run -- make test",
    "banger vm run --rm --include-untracked -- ./run-tests.sh",
    "banger vm run --dry-run",
    "banger vm run --cold -- make test",
  },
  run = function(opts)
    -- Every flag is checked before anything is looked up, also for --dry-run.
    local given = banger.vm_settings.from_flags(opts)
    given.name = opts.name
    banger.vm_settings.check(given, { names = banger.vm_settings.flags, command = "vm run" })
    local workspace = banger.workspace
    -- The project's banger.lua first: a setting that needs trust stops the
    -- command before anything is made (--no-project ignores the file).
    local project_root = banger.trust.find_root()
    local project = project_root and banger.project.load(project_root) or nil
    local settings = banger.project.vm_settings(project, given)
    settings.driver, settings.accel = given.driver, given.accel
    settings.publish = given.publish
    if given.allow_hosts then
      settings.allow_hosts = given.allow_hosts
    end
    local root = not opts.no_workspace and workspace.root() or nil
    local files, skipped = {}, 0
    if root then
      files, skipped = workspace.files(root, { include_untracked = opts.include_untracked })
    end
    local function notice()
      if skipped > 0 then
        ui.info(string.format("note: %d untracked file(s) not copied (add --include-untracked to copy them)", skipped))
      end
    end

    if opts.dry_run then
      dry_run_check(project, settings)
      if not root then
        ui.info("not inside a git repository: nothing would be copied")
        return 0
      end
      for _, f in ipairs(files) do
        io.stdout:write(f, "\n")
      end
      notice()
      return 0
    end
    if #opts.command == 0 and not banger.net.enabled() then
      banger.errors.raise("ENOTSUP", "an interactive shell needs SSH into the VM, which needs VM networking "
        .. "(see docs/networking.md); pass a command instead: banger vm run -- CMD", { exit = 2 })
    end
    notice()

    local repo = root and root:match("([^/]+)$")
    local stages = ui.stages()
    if project and project.provision then
      local base = banger.images.pick(settings.image)
      local pname = banger.project.image_name(project, base)
      if not banger.images.get(pname) then
        ui.info("provisioning for " .. project.path .. " (once; the result becomes image " .. pname .. ")")
        local prow = banger.vm.create({ name = "prov-" .. pname:sub(-12), image = base.name, kernel = settings.kernel,
          vcpus = settings.vcpus, memory = settings.memory, disk = settings.disk, work_disk = settings.work_disk,
          nat = settings.nat, file_sync = settings.file_sync, driver = settings.driver, accel = settings.accel }, stages)
        local ok, err = pcall(project.provision, banger.project.vm_handle(prow))
        if ok then
          ok, err = pcall(function()
            banger.vm.stop(prow.name)  -- a clean shutdown flushes the guest's writes
            banger.images.capture(prow, { name = pname, kernel = base.kernel, source_ref = "provisioned:" .. base.name })
          end)
        end
        pcall(banger.vm.delete, prow.name, true)
        if not ok then
          error(err, 0)
        end
      end
      settings.image = pname
    end

    settings.name = opts.name
    local driver, accel = banger.vm.pick_driver(settings.driver, settings.accel)
    local warm, why = false, "--cold"
    if not opts.cold then
      warm, why = banger.warm.usable(driver, accel)
      if warm and banger.config.get().vm.warm_snapshots == 0 then
        warm, why = false, "vm.warm_snapshots is 0"
      end
      -- a restored snapshot keeps the network it was taken with
      if warm and #banger.vm_settings.allow_hosts(settings) > 0 then
        warm, why = false, "an egress allow-list"
      end
    end
    local row, restored
    if warm then
      row, restored = warm_run(settings, driver, accel, root, files, stages)
    else
      banger.log.info("vm run", "cold boot", { why = why })
      row = cold_run(settings, root, files, stages)
    end
    local cleanup <close> = opts.rm and setmetatable({}, {
      __close = function() pcall(banger.vm.delete, row.name, true) end,
    }) or nil
    local cwd = root and ("/root/" .. repo) or "/root"
    if #opts.command == 0 then
      -- No command: an interactive shell over SSH, in the workspace.
      if not (row.ip and banger.ssh.guest_has_sshd(row)) then
        banger.errors.raise("ENOTSUP", "an interactive shell needs SSH into the VM (an address and an SSH server); "
          .. "pass a command instead: banger vm run -- CMD", { exit = 2 })
      end
      local c = banger.ssh.wait_connect(row, 30000)
      if c then
        c:close() -- pins the host key before the system ssh sees it
      end
      local sh = banger.proc.spawn(banger.ssh.ssh_argv(row, { "sh", "-c", "cd " .. banger.ssh.quote(cwd) .. " && exec ${SHELL:-/bin/sh} -l" },
        { tty = true }))
      local code = sh:wait().code
      if not opts.rm then
        banger.vm.remind_running(row.name)
      end
      return code
    end
    -- A restored VM runs the command through its agent, already connected
    -- and re-identified: SSH would add a connection and a session under
    -- emulation for the same output and exit code.
    local r = (restored and banger.guest.exec or banger.guest.run)(row, opts.command, { cwd = cwd, env = opts.env })
    if not opts.rm then
      banger.vm.remind_running(row.name)
    end
    if r.interrupted then
      banger.errors.interrupted()
    end
    return r.code
  end,
}
