-- End to end: `banger serve` driving a real sandbox (QEMU TCG, the real
-- agent) through real clients, curl --unix-socket and Python's
-- http.client: create, a 3 s streamed exec while another request is
-- answered, a 10 MiB binary file round trip, kill, fork, the per-caller
-- limit, delete.
local e2e = assert(loadfile(t.source_dir() .. "/tests/lua/e2e.lua", "t", _ENV))()
local fs = require("banger.native.fs")
local proc = require("banger.native.proc")

local function curl(sock, args, timeout_s)
  local argv = { "curl", "-sS", "-m", tostring(timeout_s or 60), "-w", "\n%{http_code}", "--unix-socket", sock }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  argv.timeout_ms = ((timeout_s or 60) + 30) * 1000
  local r = proc.run(argv)
  local body, status = r.stdout:match("^(.*)\n(%d+)$")
  return tonumber(status), body, r.stderr
end

-- What a streaming curl wrote so far ("" before its first byte).
local function so_far(path)
  return fs.exists(path) and t.read(path) or ""
end

local function json_lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    out[#out + 1] = banger.json.decode(line)
  end
  return out
end

describe("banger serve on a real sandbox", function()
  it("create, streamed exec beside another request, 10 MiB file, kill, fork, limit, delete", function()
    local home = e2e.home()
    local env = t.env(home)
    t.write(home .. "/.config/banger/config.lua",
      'return { network = { mode = "off" }, api = { max_sandboxes_per_caller = 2, max_execs_per_sandbox = 1 } }\n')
    local server = t.spawn({ t.bin(), "serve", env = env, cwd = home, stdout = "null", stderr = "pipe" })
    local sock = home .. "/run/banger/api.sock"
    t.wait_for(function()
      return proc.run({ "curl", "-sf", "--unix-socket", sock, "http://x/v1/health" }).code == 0
    end, 30000, "banger serve")

    -- created with a workspace tar as the body, its options in the query
    local ws = home .. "/ws"
    t.write(ws .. "/hello.txt", "from the workspace\n")
    t.eq(proc.run({ "tar", "-C", ws, "-cf", home .. "/ws.tar", "hello.txt" }).code, 0)
    local status, body, err = curl(sock, { "-H", "Content-Type: application/x-tar", "--data-binary", "@" .. home .. "/ws.tar",
      "http://x/v1/sandboxes?name=api1&image=tiny&memory=256MiB&vcpus=1" }, 300)
    t.eq(status, 201, (body or "") .. err)
    local rec = banger.json.decode(body)
    t.eq({ rec.name, rec.state, rec.owner, rec.vcpus }, { "api1", "running", "api:0", 1 })
    status, body = curl(sock, { "http://x/v1/sandboxes/api1/files?path=/root/workspace/hello.txt" })
    t.eq({ status, body }, { 200, "from the workspace\n" })

    local py = proc.run({ "python3", t.source_dir() .. "/tests/lua/fixtures/api_client.py", sock, "scenario", "api1",
      timeout_ms = 300000 })
    t.eq(py.code, 0, py.stderr)
    local rep = banger.json.decode(py.stdout)
    t.eq({ rep.exec_status, rep.exec_type, rep.chunked }, { 200, "application/x-ndjson", "chunked" })
    t.truthy(type(rep.lines[1].exec_id) == "number", "the first line names the exec")
    local out, errout = {}, {}
    for _, l in ipairs(rep.lines) do
      out[#out + 1] = l.stdout
      errout[#errout + 1] = l.stderr
    end
    t.eq(table.concat(out), "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n")
    t.eq(table.concat(errout), "done\n")
    local last = rep.lines[#rep.lines]
    t.eq({ last.exit_code, last.timed_out }, { 0, false })
    -- the second request was answered while the stream still ran
    t.eq(rep.health.status, 200)
    print(string.format("# exec stream: first output %.2f s, health answered %.2f s, stream ended %.2f s",
      rep.first_output_at, rep.health.at, rep.stream_end_at))
    t.truthy(rep.stream_end_at - rep.first_output_at >= 2.0, "the command printed for about 3 s")
    t.truthy(rep.health.at < rep.stream_end_at - 1.0,
      string.format("health answered at %.2f s, stream ended at %.2f s", rep.health.at, rep.stream_end_at))
    t.eq(rep.put, { 200, { bytes = 10 * 1024 * 1024, path = "/root/blob.bin" } })
    t.eq(rep.get_status, 200)
    t.eq(rep.bytes_back, 10 * 1024 * 1024)
    t.eq(rep.sha_back, rep.sha_sent)
    t.eq(rep.kill, 200)
    t.truthy(rep.killed_after_s < 60, "the killed exec ended")
    t.eq(rep.killed_lines[#rep.killed_lines].killed, true, banger.json.encode(rep.killed_lines))

    -- one exec at a time (api.max_execs_per_sandbox = 1), and a kill through curl
    t.wait_for(function()  -- the killed exec's worker may still be exiting
      return curl(sock, { "-d", '{"argv":["true"]}', "http://x/v1/sandboxes/api1/exec" }) == 200
    end, 30000, "a free exec slot")
    local exec_file = home .. "/exec.jsonl"
    local running = t.spawn({ "curl", "-sN", "-o", exec_file, "--unix-socket", sock, "-d", '{"argv":["sleep","100"]}',
      "http://x/v1/sandboxes/api1/exec", stdout = "null", stderr = "null" })
    local exec_id = t.wait_for(function()
      return so_far(exec_file):match('"exec_id":(%d+)')
    end, 30000, "the exec's id")
    status, body = curl(sock, { "-d", '{"argv":["true"]}', "http://x/v1/sandboxes/api1/exec" })
    t.eq(status, 429, body)
    t.contains(body, "max_execs_per_sandbox")
    status, body = curl(sock, { "-X", "POST", "http://x/v1/sandboxes/api1/execs/" .. exec_id .. "/kill" })
    t.eq(status, 200, body)
    t.eq(running:wait(60000).code, 0)
    local ended = json_lines(t.read(exec_file))
    t.eq(ended[#ended].killed, true, t.read(exec_file))
    status = curl(sock, { "-X", "POST", "http://x/v1/sandboxes/api1/execs/" .. exec_id .. "/kill" })
    t.eq(status, 404, "an ended exec")

    -- file routes through curl: list and delete
    status, body = curl(sock, { "http://x/v1/sandboxes/api1/files/list?path=/root" })
    t.eq(status, 200, body)
    local names = {}
    for _, e in ipairs(banger.json.decode(body).entries) do
      names[e.name] = e.type
    end
    t.eq(names["blob.bin"], "file")
    status = curl(sock, { "-X", "DELETE", "http://x/v1/sandboxes/api1/files?path=/root/blob.bin" })
    t.eq(status, 200)
    status, body = curl(sock, { "http://x/v1/sandboxes/api1/files?path=/root/blob.bin" })
    t.eq(status, 404, body)
    status, body = curl(sock, { "http://x/v1/sandboxes/api1/files?path=/root/../etc/passwd" })
    t.eq(status, 400, body)

    -- fork, then the caller's limit (2) is reached
    curl(sock, { "-X", "PUT", "--data-binary", "kept", "http://x/v1/sandboxes/api1/files?path=/root/note" })
    status, body = curl(sock, { "-d", '{"name":"api2"}', "http://x/v1/sandboxes/api1/fork" }, 300)
    t.eq(status, 201, body)
    t.eq(banger.json.decode(body).name, "api2")
    status, body = curl(sock, { "-d", '{"argv":["cat","/root/note"]}', "http://x/v1/sandboxes/api2/exec" }, 120)
    t.eq(status, 200, body)
    local lines = json_lines(body)
    t.eq(lines[2].stdout, "kept")
    t.eq(lines[#lines].exit_code, 0)
    status, body = curl(sock, { "-d", '{"name":"api3","image":"tiny"}', "http://x/v1/sandboxes" })
    t.eq(status, 429, body)
    t.contains(body, "max_sandboxes_per_caller")

    -- the events stream sees both sandboxes, then their deletion
    local events_file = home .. "/events.jsonl"
    local events = t.spawn({ "curl", "-sN", "-o", events_file, "--unix-socket", sock,
      "http://x/v1/events?interval_ms=100", stdout = "null", stderr = "null" })
    t.wait_for(function()
      local text = so_far(events_file)
      return select(2, text:gsub('"sandbox"', "")) == 2
    end, 30000, "the events stream's first lines")
    for _, name in ipairs({ "api2", "api1" }) do
      status, body = curl(sock, { "-X", "DELETE", "http://x/v1/sandboxes/" .. name }, 120)
      t.eq(status, 200, body)
    end
    status, body = curl(sock, { "http://x/v1/sandboxes" })
    t.eq(banger.json.decode(body).sandboxes, {})
    t.wait_for(function()
      return select(2, so_far(events_file):gsub('"deleted"', "")) == 2
    end, 30000, "the events stream's deletions")
    events:kill(15)
    events:wait(10000)
    local seen = {}
    for _, e in ipairs(json_lines(t.read(events_file))) do
      seen[#seen + 1] = e.event .. ":" .. e.name
    end
    table.sort(seen)
    t.eq(seen, { "deleted:api1", "deleted:api2", "sandbox:api1", "sandbox:api2" })
    status, body = curl(sock, { "http://x/v1/sandboxes" })
    t.eq(banger.json.decode(body).sandboxes, {})

    server:kill(15)
    t.eq(server:wait(30000).code, 143)
    t.falsy(fs.exists(sock))
    t.eq(e2e.processes(home .. "/run/banger"), "")
  end)
end)
