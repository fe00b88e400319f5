-- Every --json command's output against docs/scripting.md ("JSON output"):
-- the page, banger.records and the real output have the same keys and
-- types; unset values are null, never missing; flags are booleans.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json_doc = assert(loadfile(t.source_dir() .. "/tests/lua/json_doc.lua", "t", _ENV))()
local records = require("banger.records")

-- Checked where these commands already run: a registry, an HTTP server, a VM.
local elsewhere = {
  ["image pull"] = "e2e_pull_spec.lua",
  ["image push"] = "e2e_push_spec.lua",
  ["kernel pull"] = "e2e_kernel_pull_spec.lua",
  ["kernel export"] = "e2e_kernel_pull_spec.lua",
  ["vm workspace prepare"] = "e2e_workspace_spec.lua",
  ["vm snapshot"] = "e2e_snapshot_spec.lua",
  ["vm fork"] = "e2e_snapshot_spec.lua",
  ["snapshot list"] = "e2e_snapshot_spec.lua",
  ["snapshot show"] = "e2e_snapshot_spec.lua",
  ["snapshot prune"] = "e2e_snapshot_spec.lua",
  ["vm health"] = "e2e_vm_stats_spec.lua",
  ["vm stats"] = "e2e_vm_stats_spec.lua",
  ["vm ports"] = "e2e_vm_ports_spec.lua",
  ["vm forward"] = "e2e_forward_spec.lua",
  ["vm set"] = "vm_set_spec.lua",
  ["status"] = "status_spec.lua",
  ["update --check"] = "e2e_update_spec.lua",
  ["update"] = "e2e_update_spec.lua",
  ["update --rollback"] = "e2e_update_spec.lua",
}

local checked = {}

-- banger COMMAND ARGS... --json in `home`; checked against the page.
local function run(home, command, args, opts)
  local argv = {}
  for w in command:gmatch("%S+") do
    argv[#argv + 1] = w
  end
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
  end
  argv[#argv + 1] = "--json"
  local r = t.banger(argv, { home = home, timeout_ms = 120000 })
  t.truthy(r.code == 0 or (opts and opts.code == r.code), command .. ": " .. r.stderr)
  checked[command] = true
  return json_doc.conforms(command, r.stdout)
end

describe("docs/scripting.md JSON output", function()
  it("documents exactly the record shapes banger.records gives", function()
    local doc = json_doc.parse()
    for name, fields in pairs(records.kinds) do
      t.eq(doc.kinds[name], fields, "record " .. name)
    end
    for name in pairs(doc.kinds) do
      t.truthy(records.kinds[name], "documented record " .. name .. " is not in banger.records")
    end
  end)

  it("lists every bundled command that takes --json, and no other", function()
    local doc = json_doc.parse()
    local root = t.source_dir() .. "/lua/recipes/"
    local found = {}
    for path in banger.proc.run({ "find", root, "-name", "*.lua" }).stdout:gmatch("[^\n]+") do
      local recipe = banger.recipes.load(path)
      if recipe.json then
        local command = path:sub(#root + 1):gsub("%.lua$", ""):gsub("/", " ")
        found[command] = true
        t.truthy(doc.commands[command], command .. " takes --json but docs/scripting.md does not list it")
      end
    end
    for command in pairs(doc.commands) do
      -- "trust --list": a command whose flags change what it prints
      local words = command:match("^(.-) %-%-") or command
      t.truthy(found[words], "docs/scripting.md lists " .. command .. ", which takes no --json")
    end
  end)

  it("matches what every command prints", function()
    local home = e2e.home() -- kernel debian-cloud, image tiny
    local ext4 = home .. "/tiny.ext4"

    run(home, "version")
    local report = run(home, "doctor", {}, { code = 1 })
    t.truthy(#report.checks > 0)
    run(home, "dns status")

    -- kernels
    local list = run(home, "kernel list")
    t.eq(#list, 1)
    run(home, "kernel show", { "debian-cloud" })
    run(home, "kernel default")
    run(home, "kernel import", { e2e.kernel_deb(), "--name", "second" })

    -- images: an unset digest, kernel and init are null, is_default a boolean
    local img = run(home, "image register", { "--rootfs", ext4, "--name", "reg" })
    t.eq({ img.digest, img.kernel, img.is_default }, { banger.json.null, banger.json.null, false })
    local src = t.tmpdir()
    t.write(src .. "/etc/os-release", "ID=test\n")
    t.eq(banger.proc.run({ "tar", "-C", src, "-cf", home .. "/root.tar", "." }).code, 0)
    run(home, "image import", { "--name", "imp", home .. "/root.tar" })
    img = run(home, "image build debian", { "--tar", home .. "/root.tar", "--name", "deb" })
    t.eq(img.is_default, true)
    run(home, "image show", { "reg" })
    list = run(home, "image list")
    t.eq(#list, 4)
    run(home, "image cache prune", { "--dry-run" })

    -- VMs: one made without booting has no address, pid or start time
    local vm = run(home, "vm create", { "--no-start", "--image", "tiny", "box" })
    t.eq({ vm.ip, vm.pid, vm.started_at, vm.alive, vm.isolated, vm.nat },
      { banger.json.null, banger.json.null, banger.json.null, false, false, false })
    run(home, "vm show", { "box" })
    t.eq(#run(home, "vm list"), 1)
    t.eq(run(home, "vm prune", { "-f" }), { "box" })
    t.eq(run(home, "vm prune --orphans", { "-f" }).removed, {})

    -- the system install, under a root of its own
    local root = t.tmpdir()
    run(home, "system install", { "--owner", "nobody", "--root", root, "--no-start" })
    local st = run(home, "system status", { "--root", root }, { code = 1 })
    t.eq(st.installed, true)
    run(home, "system uninstall", { "--root", root })
    run(home, "ssh-config install")
    run(home, "ssh-config uninstall")

    -- a project's trust
    local project = t.tmpdir()
    t.write(project .. "/banger.lua", 'vm = { vcpus = 2 }\n')
    t.eq(run(home, "trust", { "--dry-run", project }, { code = 1 }).trusted, false)
    local trusted = run(home, "trust", { project })
    t.eq({ trusted.trusted, trusted.files[1].path }, { true, "banger.lua" })
    t.eq(run(home, "trust --list")[1].status, "trusted")
    t.eq(run(home, "trust --revoke", { project }).revoked, true)

    local doc = json_doc.parse()
    for _, command in ipairs(doc.order) do
      if elsewhere[command] then
        local spec = t.read(t.source_dir() .. "/tests/lua/" .. elsewhere[command])
        t.contains(spec, 'json_doc.conforms("' .. command .. '"', command .. " is checked in " .. elsewhere[command])
      else
        t.truthy(checked[command], command .. " --json was not run")
      end
    end
  end)
end)
