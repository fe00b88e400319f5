-- End to end: `banger mcp` driven by the official MCP TypeScript SDK client
-- (@modelcontextprotocol/sdk from npm, tests/mcp/client.mjs) against real
-- VMs (the tiny image on Debian's cloud kernel, QEMU TCG here): initialize,
-- tools and their schemas, create, `uname -a`, a file written and read
-- back, truncation, tool errors, fork, delete; the session's sandbox gone
-- once the client closed it; a fork idle past --idle-timeout deleted while
-- its busy source stays; a kill -9'd session's sandbox reaped by the next
-- session. Two boots (the forks restore snapshots).
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local json = banger.json

-- The SDK version the test pins: bump it on purpose, with a run of this spec.
local SDK_VERSION = "1.32.2"

-- The SDK, installed once per build tree (npm's own registry client) and
-- kept: an empty cache installs it again. Installed beside the entry and
-- renamed into place, so a spec running at the same time sees all or nothing.
local function sdk_dir()
  local cache = assert(os.getenv("BANGER_BUILD_DIR"), "BANGER_BUILD_DIR") .. "/test-cache/npm"
  local dir = cache .. "/sdk-" .. SDK_VERSION
  local marker = dir .. "/node_modules/@modelcontextprotocol/sdk/package.json"
  if banger.fs.exists(marker) then
    return dir
  end
  banger.fs.mkdir(cache, 493, true)
  local tmp = dir .. ".tmp-" .. banger.sys.getpid()
  local r = banger.proc.run({ "npm", "install", "--prefix", tmp, "--no-audit", "--no-fund", "--no-save",
    "@modelcontextprotocol/sdk@" .. SDK_VERSION, timeout_ms = 600000 })
  t.eq(r.code, 0, "npm install: " .. r.stderr)
  if not pcall(banger.fs.rename, tmp, dir) then
    banger.fs.remove_tree(tmp)
  end
  t.eq(json.decode(t.read(marker)).version, SDK_VERSION)
  return dir
end

local function home_with_config()
  local home = e2e.home()
  -- a small output cap, so the 200 000-byte exec below is truncated
  t.write(home .. "/.config/banger/config.lua",
    'return { network = { mode = "off" }, mcp = { max_output = "4KiB" } }\n')
  return home
end

-- node client.mjs SCENARIO, its facts by step.
local function client_spec(home, scenario, report, extra)
  local spec = { "node", t.source_dir() .. "/tests/mcp/client.mjs", scenario, cwd = home,
    env = t.env(home, { MCP_SDK_DIR = sdk_dir(), BANGER_BIN = t.bin(), MCP_HOME = home, MCP_REPORT = report }) }
  for k, v in pairs(extra or {}) do
    spec[k] = v
  end
  return spec
end

local function facts(report)
  local out = {}
  if banger.fs.exists(report) then
    for line in t.read(report):gmatch("[^\n]+") do
      local f = json.decode(line)
      out[f.step] = f
    end
  end
  return out
end

describe("banger mcp with the official TypeScript SDK client", function()
  it("initialize, tools, create, uname, files, truncation, errors, fork, delete; close removes the sandbox", function()
    local home = home_with_config()
    local report = home .. "/report.jsonl"
    local r = banger.proc.run(client_spec(home, "session", report, { timeout_ms = 900000 }))
    t.note_vms(home)
    t.eq(r.code, 0, "client: " .. r.stderr .. r.stdout)
    local f = facts(report)

    t.eq(table.concat(f.tools.names, ","), "create,delete,exec,fork,list,list_files,read_file,write_file")
    t.eq(table.concat(f.tools.exec_required, ","), "sandbox")
    t.eq(table.concat(f.tools.write_required, ","), "sandbox,path,content")
    t.eq(table.concat(f.tools.create_props, ","), "allow_hosts,image,keep,memory,name,nat,snapshot,vcpus")

    t.eq(f.create.name, "m1")
    t.eq(f.create.state, "running")
    -- create's stages reached the SDK's onprogress, numbered from 1
    local stages = {}
    for i, p in ipairs(f.create.progress) do
      t.eq(p.progress, i)
      stages[#stages + 1] = p.message
    end
    t.contains(table.concat(stages, "|"), "create m1: launch|")
    t.contains(table.concat(stages, "|"), "create m1: wait for agent")
    t.truthy(f.create.owner:match("^session:" .. f.tools.pid .. ":%d+$"), "owned by the server's process: " .. f.create.owner)

    t.eq(f.uname.exit_code, 0)
    t.truthy(f.uname.stdout:match("^Linux m1 %d+%.%d+%.%d+%-%d+%-cloud%-amd64 "), "uname -a: " .. f.uname.stdout)
    t.contains(f.uname.text, "exit code 0")

    t.eq(f.files.bytes, #"hello from the MCP client\nline two \u{e9}\n")
    t.eq(f.files.same, true, f.files.read)
    t.eq(f.files.entry_type, "file")
    t.eq(f.files.entry_size, f.files.bytes)
    t.eq(f.files.entry_mode & 511, 384)
    t.eq(f.binary.bytes, 4096)
    t.eq(f.binary.same, true, "sha256sum in the guest: " .. tostring(f.binary.stdout) .. ", want " .. f.binary.want)

    t.eq(f.truncation.exit_code, 3)
    t.eq(f.truncation.has_marker, true)
    t.eq(f.truncation.stdout_cut, 200000 - 4096)
    t.eq(f.truncation.tail, string.rep("0", 15) .. "1999\n")
    t.eq(f.truncation.stderr, "done\n")

    t.eq(f.errors.missing[1], true)
    t.contains(f.errors.missing[2], "ENOENT")
    t.eq(f.errors.unknown[1], true)
    t.contains(f.errors.unknown[2], "no sandbox 'nosuch'")
    t.eq(f.errors.invalid[1], true)
    t.contains(f.errors.invalid[2], "give exactly one of 'command' and 'argv'")
    t.eq(f.errors.protocol_error, -32602)

    t.eq(f.fork.name, "f1")
    t.eq(f.fork.owner, f.create.owner)
    t.eq(f.fork.cat, "hello from the MCP client\nline two \u{e9}\n")
    t.eq(table.concat(f.fork.listed, ","), "f1,m1")
    t.eq(table.concat(f.fork.after, ","), "m1")

    -- the client ended stdin (and sends SIGTERM 2 s later): the server deleted m1
    t.contains(f.closed.stderr, "deleted sandbox m1 (the MCP session ended)")
    -- the SDK read nothing but JSON-RPC from the server's stdout, create's progress included
    t.eq(#f.closed.transport_errors, 0, table.concat(f.closed.transport_errors, "; "))
    t.eq(e2e.vms(home).m1, nil)
    t.eq(e2e.list(home .. "/.local/state/banger/vms"), {})
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)

  it("a kill -9'd session's sandbox is reaped when the next session starts", function()
    local home = home_with_config()
    local report = home .. "/report.jsonl"
    local spec = client_spec(home, "orphan", report, { stdin = "pipe", stdout = "null", stderr = "pipe" })
    spec.env[#spec.env + 1] = "MCP_ARGS=--idle-timeout 5"
    local c = t.spawn(spec)
    local orphan = t.wait_for(function()
      local ok, st = pcall(c.wait, c, 0)
      if ok then -- the client ended before it reported: its failure, not a timeout
        error("client exited " .. st.code .. ": " .. c:read_all("stderr"), 0)
      end
      return facts(report).orphan
    end, 900000, "the orphan's create")
    t.note_vms(home)
    -- the fork went idle for 5 s and was deleted; m2, busy meanwhile, was not
    local idle = facts(report).idle
    t.eq(table.concat(idle.listed, ","), "m2")
    t.truthy(idle.ms >= 5000, "deleted after " .. idle.ms .. " ms")
    t.truthy(idle.calls >= 3, idle.calls .. " calls on m2 meanwhile")
    t.contains(idle.stderr, "deleted sandbox f2 (idle for 5 s)")
    t.not_contains(idle.stderr, "deleted sandbox m2")
    t.eq(orphan.name, "m2")
    t.truthy(orphan.owner:match("^session:" .. orphan.pid .. ":%d+$"), orphan.owner)
    t.eq(banger.proc.run({ "kill", "-9", tostring(orphan.pid) }).code, 0)
    t.wait_for(function()
      return not banger.fs.exists("/proc/" .. orphan.pid .. "/stat")
        or t.read("/proc/" .. orphan.pid .. "/stat"):match("^%d+ %b() Z")
    end, 30000, "the server's end")
    c:write("go\n")
    c:close_stdin()
    t.eq(c:wait(60000).code, 0, c:read_all("stderr"))
    -- left behind: the row and the running hypervisor
    t.eq(e2e.vms(home).m2.state, "running")
    t.truthy(e2e.processes(home .. "/run/banger") ~= "", "the orphan's hypervisor runs")

    local r = banger.proc.run(client_spec(home, "reap", report, { timeout_ms = 300000 }))
    t.eq(r.code, 0, "client: " .. r.stderr)
    local f = facts(report)
    t.eq(#f.reap.sandboxes, 0)
    t.contains(f.reap.stderr, "deleted 1 sandbox(es) of ended sessions: m2",
      t.read(home .. "/.local/state/banger/banger.log"))
    t.eq(e2e.vms(home).m2, nil)
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
