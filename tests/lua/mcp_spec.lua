-- banger mcp's protocol layer without a VM: JSON-RPC framing and errors,
-- initialize's version negotiation, the tools' schemas and argument checks,
-- output truncation, the session's ownership and idle rules (over a
-- recording double of banger.sandbox's interface), and the real process on
-- pipes: nothing but JSON-RPC on stdout, no project code loaded, exit on
-- EOF and on SIGTERM. tests/lua/e2e_mcp_spec.lua drives it with the
-- official TypeScript SDK client against real VMs.
local json = banger.json
local mcp = banger.mcp
local mcp_sandboxes = banger.mcp_sandboxes

local function call(session, msg)
  local reply = session:handle(type(msg) == "string" and msg or json.encode(msg))
  return reply and json.decode(reply)
end

-- A tool double with the shape of lua/api/mcp/*.lua.
local function echo_tool(run)
  return {
    name = "echo",
    description = "echo",
    input_schema = {
      type = "object",
      properties = {
        word = { type = "string" },
        n = { type = "integer", minimum = 1, maximum = 3 },
        list = { type = "array", items = { type = "string" } },
        env = { type = "object", additionalProperties = { type = "string" } },
      },
      required = { "word" },
      additionalProperties = false,
    },
    run = run or function(args)
      return { content = json.array({ { type = "text", text = args.word } }) }
    end,
  }
end

local function session(tools)
  return mcp.session({ tools = tools or { echo_tool() }, context = {}, server_info = { name = "banger", version = "t" } })
end

describe("JSON-RPC framing and errors", function()
  it("answers initialize with the client's revision when known, else the newest", function()
    local s = session()
    for _, v in ipairs({ "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" }) do
      local r = call(s, { jsonrpc = "2.0", id = 1, method = "initialize",
        params = { protocolVersion = v, capabilities = {}, clientInfo = { name = "c", version = "1" } } })
      t.eq(r.id, 1)
      t.eq(r.result.protocolVersion, v)
      t.eq(r.result.serverInfo.name, "banger")
      t.eq(r.result.capabilities.tools.listChanged, false)
    end
    local r = call(s, { jsonrpc = "2.0", id = "a", method = "initialize", params = { protocolVersion = "1999-01-01" } })
    t.eq(r.id, "a")
    t.eq(r.result.protocolVersion, mcp.protocol_versions[1])
    r = call(s, { jsonrpc = "2.0", id = 2, method = "initialize", params = {} })
    t.eq(r.error.code, -32602)
  end)

  it("gives the JSON-RPC error for each protocol problem, with the request's id", function()
    local s = session()
    local cases = {
      { "{not json", -32700, json.null },
      { "[1,2]", -32600, json.null },
      { '"text"', -32600, json.null },
      { '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', -32600, json.null },
      { '{"jsonrpc":"2.0","id":1.5,"method":"ping"}', -32600, json.null },
      { '{"jsonrpc":"1.0","id":7,"method":"ping"}', -32600, 7 },
      { '{"jsonrpc":"2.0","id":8}', -32600, 8 },
      { '{"jsonrpc":"2.0","id":9,"method":5}', -32600, 9 },
      { '{"jsonrpc":"2.0","id":10,"method":"resources/list"}', -32601, 10 },
      { '{"jsonrpc":"2.0","id":11,"method":"ping","params":[1]}', -32602, 11 },
      { '{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"nope","arguments":{}}}', -32602, 12 },
      { '{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"arguments":{}}}', -32602, 13 },
      { '{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"echo","arguments":[1]}}', -32602, 14 },
    }
    for _, c in ipairs(cases) do
      local r = call(s, c[1])
      t.eq(r.jsonrpc, "2.0", c[1])
      t.eq(r.error and r.error.code, c[2], c[1])
      t.eq(r.id, c[3], c[1])
      t.truthy(type(r.error.message) == "string" and #r.error.message > 0, c[1])
      t.eq(r.result, nil, c[1])
    end
  end)

  it("answers no notification, response or blank line; ping and cancellation are harmless", function()
    local s = session()
    t.eq(s:handle(""), nil)
    t.eq(s:handle("   "), nil)
    t.eq(s:handle('{"jsonrpc":"2.0","method":"notifications/initialized"}'), nil)
    t.truthy(s.initialized)
    t.eq(s:handle('{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"x"}}'), nil)
    t.eq(s:handle('{"jsonrpc":"2.0","method":"notifications/whatever"}'), nil)
    t.eq(s:handle('{"jsonrpc":"2.0","id":5,"result":{}}'), nil)
    local r = call(s, '{"jsonrpc":"2.0","id":6,"method":"ping"}')
    t.eq(r.id, 6)
    t.eq(s:handle('{"jsonrpc":"2.0","id":6,"method":"ping"}'), '{"id":6,"jsonrpc":"2.0","result":{}}')
  end)
end)

describe("tools", function()
  it("lists the bundled tools, each with an object input schema that the checker accepts", function()
    local tools = mcp.tools()
    local r = call(session(tools), { jsonrpc = "2.0", id = 1, method = "tools/list" })
    local names = {}
    for _, tool in ipairs(r.result.tools) do
      names[#names + 1] = tool.name
      t.eq(tool.inputSchema.type, "object", tool.name)
      t.eq(tool.inputSchema.additionalProperties, false, tool.name)
      t.truthy(#tool.description > 20, tool.name)
      for _, req in ipairs(tool.inputSchema.required or {}) do
        t.truthy(tool.inputSchema.properties[req], tool.name .. " requires a property it defines: " .. req)
      end
    end
    t.eq(table.concat(names, ","), "create,list,exec,read_file,write_file,list_files,fork,delete")
    -- required lists are JSON arrays, empty property sets JSON objects
    local text = session(tools):handle(json.encode({ jsonrpc = "2.0", id = 1, method = "tools/list" }))
    t.contains(text, '"required":["sandbox","path","content"]')
    t.contains(text, '"properties":{}')
  end)

  it("a wrong argument is a tool error naming it; the tool does not run", function()
    local ran = 0
    local s = session({ echo_tool(function() ran = ran + 1 return { content = json.array({}) } end) })
    local cases = {
      [{}] = "missing required argument 'word'",
      [{ word = 1 }] = "word must be a string",
      [{ word = "a", n = 0 }] = "n must be at least 1",
      [{ word = "a", n = 4 }] = "n must be at most 3",
      [{ word = "a", n = 1.5 }] = "n must be an integer",
      [{ word = "a", list = { "x", 2 } }] = "list[1] must be a string",
      [{ word = "a", list = "x" }] = "list must be an array",
      [{ word = "a", env = { A = 1 } }] = "env.A must be a string",
      [{ word = "a", extra = true }] = "unknown argument 'extra'",
    }
    for args, why in pairs(cases) do
      local r = call(s, { jsonrpc = "2.0", id = 1, method = "tools/call", params = { name = "echo", arguments = args } })
      t.eq(r.result.isError, true, why)
      t.contains(r.result.content[1].text, why)
    end
    t.eq(ran, 0)
    local r = call(s, { jsonrpc = "2.0", id = 2, method = "tools/call",
      params = { name = "echo", arguments = { word = "hi", n = 2, list = {}, env = {} } } })
    t.eq(r.result.isError, nil)
    t.eq(ran, 1)
  end)

  it("a tool's failure is an isError result with its code and message, not a protocol error", function()
    local s = session({ echo_tool(function() banger.errors.raise("ENOENT", "no sandbox 'x'") end) })
    local r = call(s, { jsonrpc = "2.0", id = 3, method = "tools/call", params = { name = "echo", arguments = { word = "a" } } })
    t.eq(r.error, nil)
    t.eq(r.result.isError, true)
    t.eq(r.result.content[1].text, "ENOENT: no sandbox 'x'")
    s = session({ echo_tool(function() local x = nil; return x.y end) })
    r = call(s, { jsonrpc = "2.0", id = 4, method = "tools/call", params = { name = "echo", arguments = { word = "a" } } })
    t.eq(r.result.isError, true)
    t.contains(r.result.content[1].text, "internal error: ")
  end)

  it("sends progress notifications while a call with a progress token runs, none without", function()
    local sent = {}
    local ctx = {}
    local s = mcp.session({ tools = { echo_tool(function(_, c)
      if c.progress then
        c.progress("stage one")
        c.progress("stage two")
      end
      return { content = json.array({}) }
    end) }, context = ctx, server_info = { name = "b", version = "1" },
      notify = function(m) sent[#sent + 1] = m end })
    local r = call(s, { jsonrpc = "2.0", id = 1, method = "tools/call",
      params = { name = "echo", arguments = { word = "a" }, _meta = { progressToken = "tok" } } })
    t.eq(r.result.isError, nil)
    t.eq(#sent, 2)
    t.eq(sent[1].method, "notifications/progress")
    t.eq(sent[1].params.progressToken, "tok")
    t.eq(sent[1].params.progress, 1)
    t.eq(sent[2].params.progress, 2)
    t.eq(sent[2].params.message, "stage two")
    t.eq(sent[1].id, nil)
    t.eq(ctx.progress, nil, "cleared after the call")
    call(s, { jsonrpc = "2.0", id = 2, method = "tools/call", params = { name = "echo", arguments = { word = "a" } } })
    t.eq(#sent, 2)
  end)

  it("non-UTF-8 output reaches the client as valid JSON text", function()
    local s = session({ echo_tool(function() return { content = json.array({ { type = "text", text = mcp.text("a\xff\xfeb\xe2\x82") } }) } end) })
    local r = call(s, { jsonrpc = "2.0", id = 1, method = "tools/call", params = { name = "echo", arguments = { word = "a" } } })
    t.eq(r.result.content[1].text, "a\u{FFFD}\u{FFFD}b\u{FFFD}\u{FFFD}")
    t.eq(mcp.text("h\u{e9}llo \u{1F600}"), "h\u{e9}llo \u{1F600}")
  end)
end)

describe("truncation", function()
  it("keeps everything up to the limit", function()
    local c = mcp.collector(100)
    c:add(string.rep("a", 60))
    c:add(string.rep("b", 40))
    local text, cut = c:result()
    t.eq(text, string.rep("a", 60) .. string.rep("b", 40))
    t.eq(cut, 0)
  end)

  it("keeps the first and last halves around an explicit marker with the dropped count", function()
    local c = mcp.collector(1000)
    local total = 0
    for i = 1, 500 do
      local chunk = string.format("%05d:", i) .. string.rep("x", 94) -- 100 bytes
      c:add(chunk)
      total = total + #chunk
    end
    local text, cut = c:result()
    t.eq(cut, total - 1000)
    t.contains(text, "\n[... " .. (total - 1000) .. " bytes truncated ...]\n")
    t.eq(text:sub(1, 6), "00001:")
    t.truthy(text:find("00500:" .. string.rep("x", 94) .. "$"), "ends with the last line")
    t.eq(#text, 1000 + #("\n[... " .. (total - 1000) .. " bytes truncated ...]\n"))
  end)

  it("never cuts a UTF-8 character in two", function()
    local c = mcp.collector(11)
    c:add(string.rep("\u{e9}", 50)) -- 100 bytes, 2 each
    local text, cut = c:result()
    t.truthy(utf8.len(text), "valid UTF-8")
    t.not_contains(text, "\u{FFFD}")
    t.contains(text, "bytes truncated")
    t.eq(cut, 100 - 4 - 6)
  end)
end)

-- A double with banger.sandbox's interface that records calls; the real
-- one is driven by e2e_mcp_spec.lua.
local function sandbox_double()
  local rows, calls = {}, {}
  local d = { rows = rows, calls = calls }
  local n = 0
  function d.create(o)
    n = n + 1
    local r = { name = o.name or ("sb" .. n), state = "running", owner = o.owner }
    rows[r.name] = r
    calls[#calls + 1] = "create " .. r.name .. " " .. o.owner
    return r
  end
  function d.get(name)
    return rows[name] or banger.errors.raise("ENOENT", "no sandbox '" .. name .. "'")
  end
  function d.list(o)
    local out = {}
    for _, r in pairs(rows) do
      if r.owner == o.owner then
        out[#out + 1] = r
      end
    end
    table.sort(out, function(a, b) return a.name < b.name end)
    return out
  end
  function d.delete(name)
    d.get(name)
    rows[name] = nil
    calls[#calls + 1] = "delete " .. name
    return true
  end
  function d.fork(name, o)
    d.get(name)
    return d.create({ name = o.name, owner = o.owner })
  end
  return d
end

describe("a session's sandboxes", function()
  it("sees only its own and kept ones; another session's and the user's VMs are ENOENT", function()
    local sb = sandbox_double()
    sb.rows.mine_other = { name = "mine_other", owner = "session:1:2" }
    sb.rows.devbox = { name = "devbox" }
    sb.rows.apibox = { name = "apibox", owner = "api:0" }
    local ctx = mcp_sandboxes.new({ sandbox = sb, owner = "session:5:6", idle_ms = 0, max_output = 1024 })
    ctx:create({ name = "a" })
    ctx:create({ name = "k", keep = true })
    t.eq(sb.rows.a.owner, "session:5:6")
    t.eq(sb.rows.k.owner, mcp_sandboxes.kept_owner)
    t.eq(sb.rows.k.keep, nil)
    for _, name in ipairs({ "mine_other", "devbox", "apibox" }) do
      t.raises(function() ctx:get(name) end, "ENOENT")
      t.raises(function() ctx:delete(name) end, "ENOENT")
      t.raises(function() ctx:fork(name, {}) end, "ENOENT")
    end
    t.eq(sb.rows.devbox.name, "devbox")
    local names = {}
    for _, r in ipairs(ctx:list()) do
      names[#names + 1] = r.name
    end
    t.eq(table.concat(names, ","), "a,k")
  end)

  it("deletes its own after the idle time without a call on them, and all but kept ones at the end", function()
    local sb = sandbox_double()
    local now = 1000
    local ctx = mcp_sandboxes.new({ sandbox = sb, owner = "session:5:6", idle_ms = 60000, max_output = 1024,
      clock = function() return now end })
    t.eq(ctx:next_idle_ms(), nil)
    ctx:create({ name = "a" })
    ctx:create({ name = "k", keep = true })
    now = now + 30000
    ctx:create({ name = "b" })
    ctx:fork("b", { name = "f" })
    t.eq(sb.rows.f.owner, "session:5:6")
    t.eq(ctx:next_idle_ms(), 30000)
    now = now + 29999
    t.eq(#ctx:reap_idle(), 0)
    ctx:get("a") -- a call on it: idle again from now
    now = now + 1
    t.eq(table.concat(ctx:reap_idle(), ","), "")
    now = now + 30000
    t.eq(table.concat(ctx:reap_idle(), ","), "b,f")
    t.eq(sb.rows.b, nil)
    t.eq(ctx:next_idle_ms(), 29999)
    ctx:close()
    t.eq(sb.rows.a, nil)
    t.truthy(sb.rows.k, "kept")
    t.eq(table.concat(sb.calls, "|"),
      "create a session:5:6|create k mcp:kept|create b session:5:6|create f session:5:6|delete b|delete f|delete a")
  end)
end)

describe("a session's end", function()
  it("a signal while deleting does not stop it (the SDK sends SIGTERM 2 s after closing stdin)", function()
    local sb = sandbox_double()
    local delete = sb.delete
    local interrupted = 0
    sb.delete = function(name)
      if interrupted < 2 then
        interrupted = interrupted + 1
        banger.errors.raise("ECANCELED", "terminated")
      end
      return delete(name)
    end
    local now = 0
    local ctx = mcp_sandboxes.new({ sandbox = sb, owner = "session:5:6", idle_ms = 1000, max_output = 1024,
      clock = function() return now end })
    ctx:create({ name = "a" })
    ctx:create({ name = "b" })
    now = 1000
    -- idle deletion is not the session's end: an interrupt stops it (the
    -- sandbox stays tracked) and reaches the serve loop
    t.eq(#ctx:reap_idle(), 0)
    t.truthy(sb.rows.a and sb.rows.b, "both still there")
    interrupted = 0
    ctx:close()
    t.eq(sb.rows.a, nil)
    t.eq(sb.rows.b, nil)
    t.eq(interrupted, 2)
  end)
end)

describe("the banger mcp process", function()
  local init = json.encode({ jsonrpc = "2.0", id = 1, method = "initialize",
    params = { protocolVersion = "2025-06-18", capabilities = {}, clientInfo = { name = "spec", version = "1" } } })

  it("writes only JSON-RPC lines on stdout and exits 0 at the end of its input", function()
    local r = t.banger({ "mcp" }, { input = init .. "\n"
      .. '{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
      .. '{"jsonrpc":"2.0","id":2,"method":"tools/list"}\r\n'
      .. "\n"
      .. '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list","arguments":{}}}\n'
      .. '{"jsonrpc":"2.0","id":4,"method":"ping"}' })
    t.eq(r.code, 0, r.stderr)
    local ids = {}
    for line in r.stdout:gmatch("([^\n]*)\n") do
      local msg = assert(json.decode(line), line)
      t.eq(msg.jsonrpc, "2.0")
      ids[#ids + 1] = msg.id
      t.eq(msg.error, nil, line)
    end
    t.eq(table.concat(ids, ","), "1,2,3,4")
    t.eq(r.stdout:sub(-1), "\n")
  end)

  it("reads a message of several MiB that arrives in many reads, and the lines around it", function()
    local blob = string.rep("0123456789abcdef", 3 * 65536 + 7) -- 3 MiB + 112 bytes
    local big = json.encode({ jsonrpc = "2.0", id = 2, method = "tools/call",
      params = { name = "list", arguments = { blob = blob } } })
    local r = t.banger({ "mcp" }, { input = init .. "\n" .. big .. "\n" .. '{"jsonrpc":"2.0","id":3,"method":"ping"}\n' })
    t.eq(r.code, 0, r.stderr)
    local ids, texts = {}, {}
    for line in r.stdout:gmatch("([^\n]*)\n") do
      local msg = assert(json.decode(line), line)
      ids[#ids + 1] = msg.id
      texts[#texts + 1] = msg.result and msg.result.content and msg.result.content[1].text or ""
    end
    t.eq(table.concat(ids, ","), "1,2,3")
    t.eq(texts[2], "invalid arguments for list: unknown argument 'blob'")
  end)

  it("keeps stdout for the protocol: a tool's prints and its child processes go to stderr", function()
    local home = t.tmpdir()
    -- the user's own tool replaces the bundled one (as a user recipe does)
    t.write(home .. "/.config/banger/api/mcp/list.lua", [[
      return { name = "list", description = "noisy", input_schema = { type = "object", properties = {} },
        run = function()
          print("PRINTED")
          io.write("WRITTEN\n")
          io.stdout:write("STDOUT\n")
          local c = banger.proc.spawn({ "sh", "-c", "echo CHILD; read x && echo READ:$x" })
          c:wait()
          return { content = banger.json.array({ { type = "text", text = "quiet" } }) }
        end }
    ]])
    local r = t.banger({ "mcp" }, { home = home, input = init .. "\n"
      .. '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list","arguments":{}}}\n'
      .. "this line is for the protocol, not for a child\n" })
    t.eq(r.code, 0, r.stderr)
    local lines = {}
    for line in r.stdout:gmatch("([^\n]*)\n") do
      lines[#lines + 1] = assert(json.decode(line), line)
    end
    t.eq(#lines, 3)
    t.eq(lines[2].result.content[1].text, "quiet")
    t.eq(lines[3].error.code, -32700)
    for _, word in ipairs({ "PRINTED", "WRITTEN", "STDOUT", "CHILD" }) do
      t.contains(r.stderr, word)
      t.not_contains(r.stdout, word)
    end
    t.not_contains(r.stderr, "READ:")
  end)

  it("refuses a tool file of the user's that others can write", function()
    local home = t.tmpdir()
    t.write(home .. "/.config/banger/api/mcp/exec.lua", "return {}\n", tonumber("666", 8))
    banger.fs.chmod(home .. "/.config/banger/api/mcp/exec.lua", tonumber("666", 8))
    local r = t.banger({ "mcp" }, { home = home, input = init .. "\n" })
    t.eq(r.code, 77)
    t.contains(r.stderr, "refusing your MCP tool")
    t.eq(r.stdout, "")
  end)

  it("loads nothing from an untrusted project in its working directory", function()
    local home = t.tmpdir()
    local project = home .. "/proj"
    local marker = home .. "/ran"
    t.write(project .. "/.git/HEAD", "ref: refs/heads/main\n")
    local evil = "io.open('" .. marker .. "', 'w'):write('x') io.stdout:write('EVIL\\n')\n"
    t.write(project .. "/banger.lua", evil .. "return {}\n")
    -- a banger.lua alone: served as usual, never evaluated
    local r = t.banger({ "mcp" }, { home = home, cwd = project, input = init .. "\n" })
    t.eq(r.code, 0, r.stderr)
    t.eq(json.decode(r.stdout:match("^[^\n]*")).result.serverInfo.name, "banger")
    -- a project recipe overriding the command: refused, as for any command
    t.write(project .. "/.banger/recipes/mcp.lua", evil .. "return { summary = 'x', run = function() return 0 end }\n")
    r = t.banger({ "mcp" }, { home = home, cwd = project, input = init .. "\n" })
    t.eq(r.code, 77, r.stderr)
    t.contains(r.stderr, "not trusted")
    t.eq(r.stdout, "")
    -- with --no-project (the client configurations in docs/mcp.md): the bundled server
    r = t.banger({ "--no-project", "mcp" }, { home = home, cwd = project, input = init .. "\n" })
    t.eq(r.code, 0, r.stderr)
    t.eq(json.decode(r.stdout:match("^[^\n]*")).result.serverInfo.name, "banger")
    t.falsy(banger.fs.exists(marker), "project code ran")
    t.not_contains(r.stdout, "EVIL")
  end)

  it("a session's owner is gone once its process died, even while a zombie nobody reaped", function()
    local c = t.spawn({ "sleep", "60" })
    local owner = banger.sandbox.session_owner(c:pid())
    t.truthy(owner:match("^session:" .. c:pid() .. ":%d+$"), owner)
    t.eq(banger.sandbox.owner_alive(owner), true)
    t.eq(banger.sandbox.owner_alive("session:" .. c:pid() .. ":1"), false, "same pid, another start time")
    c:kill(9)
    t.wait_for(function()
      return t.read("/proc/" .. c:pid() .. "/stat"):match("^%d+ %b() Z")
    end, 10000, "a zombie")
    t.eq(banger.sandbox.owner_alive(owner), false)
    c:wait()
    t.eq(banger.sandbox.owner_alive(owner), false)
  end)

  it("ends on SIGTERM while waiting for input, with 143", function()
    local home = t.tmpdir()
    local c = t.spawn({ t.bin(), "mcp", env = t.env(home), cwd = home, stdin = "pipe", stdout = "pipe", stderr = "pipe" })
    c:write(init .. "\n")
    -- the answer to initialize says it is serving
    t.wait_for(function()
      return banger.fs.exists(home .. "/.local/state/banger/banger.log")
        and t.read(home .. "/.local/state/banger/banger.log"):find("session session:", 1, true)
    end, 30000, "the session's start in the log")
    c:kill(15)
    local st = c:wait(30000)
    t.eq(st.code, 143)
    t.contains(c:read_all("stdout"), '"protocolVersion":"2025-06-18"')
  end)
end)
