--- banger.mcp: a Model Context Protocol server (`banger mcp`): JSON-RPC 2.0,
-- one message per line, on standard input and output.
--
-- The protocol layer (framing, initialize, tools/list, tools/call, errors)
-- is `session(opts):handle(line)`, testable without a VM. The tools are
-- files: `$XDG_CONFIG_HOME/banger/api/mcp/<tool>.lua` (the user's, used only
-- when nobody else can write it) before the bundled `lua/api/mcp/<tool>.lua`;
-- never the project directory's. `serve` owns the process: standard output
-- carries nothing but protocol messages, sandboxes the session made die
-- with it, and idle ones are deleted (docs/mcp.md).
local errors = require("banger.errors")
local json = require("banger.native.json")
local sys = require("banger.native.sys")
local fs = require("banger.native.fs")

local M = {}

--- Protocol revisions this server speaks, newest first. An `initialize`
-- naming one of them gets it back; any other gets the newest.
M.protocol_versions = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" }

-- The tools, in the order tools/list gives them.
M.tool_names = { "create", "list", "exec", "read_file", "write_file", "list_files", "fork", "delete" }

-- JSON-RPC error codes (https://www.jsonrpc.org/specification#error_object).
local PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR =
  -32700, -32600, -32601, -32602, -32603

local MAX_LINE = 64 * 1024 * 1024

--- Makes `s` valid UTF-8 (JSON text must be): each byte that starts no
-- valid sequence becomes U+FFFD. Command output may be binary.
function M.text(s)
  local out, i = {}, 1
  while true do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      return table.concat(out)
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\u{FFFD}"
    i = bad + 1
  end
end

-- s without a last UTF-8 sequence that the cut left incomplete.
local function utf8_head(s)
  local i, back = #s, 0
  while i > 0 and back < 3 and (s:byte(i) & 0xC0) == 0x80 do
    i, back = i - 1, back + 1
  end
  if i == 0 then
    return s
  end
  local b = s:byte(i)
  local need = b >= 0xF0 and 4 or b >= 0xE0 and 3 or b >= 0xC0 and 2 or 1
  if #s - i + 1 < need then
    return s:sub(1, i - 1)
  end
  return s
end

-- The last n bytes of s, less the continuation bytes the cut left at its start.
local function utf8_tail(s, n)
  local from = math.max(1, #s - n + 1)
  while from > 1 and from <= #s and (s:byte(from) & 0xC0) == 0x80 do
    from = from + 1
  end
  return s:sub(from)
end

--- A collector for streamed output that keeps at most `max` bytes: the
-- first half and the last half, and counts what it dropped between them.
-- `c:add(chunk)`; `c:result()` returns the text (with
-- "[... N bytes truncated ...]" where bytes were dropped, valid UTF-8)
-- and the number of bytes dropped.
function M.collector(max)
  local head_max = max // 2
  local tail_max = max - head_max
  local head, tail = {}, {}
  local head_len, tail_len, total = 0, 0, 0
  local c = {}
  function c:add(chunk)
    total = total + #chunk
    if head_len < head_max then
      local take = chunk:sub(1, head_max - head_len)
      head[#head + 1] = take
      head_len = head_len + #take
      chunk = chunk:sub(#take + 1)
    end
    if #chunk > 0 then
      tail[#tail + 1] = chunk
      tail_len = tail_len + #chunk
      if tail_len > 2 * tail_max then
        local t = table.concat(tail)
        tail, tail_len = { t:sub(-tail_max) }, tail_max
      end
    end
  end
  function c:result()
    local h, t = table.concat(head), table.concat(tail)
    if total <= max then
      return M.text(h .. t), 0
    end
    h = utf8_head(h)
    t = utf8_tail(t, tail_max)
    local dropped = total - #h - #t
    return M.text(h) .. "\n[... " .. dropped .. " bytes truncated ...]\n" .. M.text(t), dropped
  end
  return c
end

-- Tool definitions ----------------------------------------------------------

-- A tool file returns { name, title, description, input_schema, annotations,
-- run = function(args, ctx) -> result }.
local function load_tool(name)
  local paths = require("banger.native.paths")
  local trust = require("banger.trust")
  local config = paths.resolve().config
  local top = config:match("^(.*)/[^/]+$") or config
  local user = config .. "/api/mcp/" .. name .. ".lua"
  local file = sys.lua_dir() .. "/api/mcp/" .. name .. ".lua"
  local st = fs.stat(user)
  if st and st.type == "file" then
    local why = trust.unsafe_path(top, user)
    if why then
      errors.raise("EUNSAFE", "refusing your MCP tool " .. user .. ": " .. why, { exit = 77 })
    end
    file = user
  end
  -- like a recipe's: reads fall through to the globals, its own stay its own
  local env = setmetatable({ banger = require("banger") }, { __index = _G })
  local chunk, err = loadfile(file, "t", env)
  if not chunk then
    errors.raise("ESYNTAX", err)
  end
  local tool = chunk()
  if type(tool) ~= "table" or type(tool.run) ~= "function" or tool.name ~= name then
    errors.raise("EINVAL", file .. ": an MCP tool returns { name = '" .. name .. "', run = function, ... }")
  end
  return tool
end

--- The tools, loaded from their files: a list in `tool_names` order.
function M.tools()
  local out = {}
  for _, name in ipairs(M.tool_names) do
    out[#out + 1] = load_tool(name)
  end
  return out
end

-- Argument checking against the tools' schemas. The schemas use a small
-- part of JSON Schema (object, properties, required, type, items, minimum,
-- maximum, additionalProperties = false), and this checks exactly that part,
-- so a wrong call comes back as a tool error the model can correct.
local function json_type(v)
  if v == json.null then
    return "null"
  end
  local t = type(v)
  if t == "string" or t == "boolean" then
    return t
  end
  if t == "number" then
    return math.type(v) == "integer" and "integer" or "number"
  end
  if t == "table" then
    if next(v) == nil then
      return "empty"
    end
    return #v > 0 and "array" or "object"
  end
  return t
end

local function type_ok(want, got)
  return want == got or (want == "number" and got == "integer")
    or (got == "empty" and (want == "array" or want == "object"))
end

local function check_value(schema, v, where)
  local got = json_type(v)
  if schema.type and not type_ok(schema.type, got) then
    return where .. " must be " .. (schema.type == "integer" and "an integer" or ("a" .. (schema.type:match("^[aeiou]") and "n " or " ") .. schema.type))
  end
  if schema.enum then
    for _, e in ipairs(schema.enum) do
      if e == v then
        return nil
      end
    end
    return where .. " must be one of " .. table.concat(schema.enum, ", ")
  end
  if got == "integer" or got == "number" then
    if schema.minimum and v < schema.minimum then
      return where .. " must be at least " .. schema.minimum
    end
    if schema.maximum and v > schema.maximum then
      return where .. " must be at most " .. schema.maximum
    end
  end
  if schema.type == "array" and schema.items then
    for i, x in ipairs(v) do
      local why = check_value(schema.items, x, where .. "[" .. (i - 1) .. "]")
      if why then
        return why
      end
    end
  end
  if schema.type == "object" then
    local props = schema.properties or {}
    if got ~= "empty" then
      for k, x in pairs(v) do
        if type(k) ~= "string" then
          return where .. " must be an object"
        end
        local p = props[k]
        if p then
          local why = check_value(p, x, where == "arguments" and k or (where .. "." .. k))
          if why then
            return why
          end
        elseif schema.additionalProperties == false then
          return "unknown argument '" .. k .. "'" .. (where == "arguments" and "" or (" in " .. where))
        elseif type(schema.additionalProperties) == "table" then
          local why = check_value(schema.additionalProperties, x, where .. "." .. k)
          if why then
            return why
          end
        end
      end
    end
    for _, r in ipairs(schema.required or {}) do
      if v[r] == nil then
        return "missing required argument '" .. r .. "'"
      end
    end
  end
end

--- Checks tool arguments against a tool's input schema (the subset of
-- JSON Schema the bundled tools use); returns nil, or why they are wrong.
function M.check_arguments(schema, args)
  return check_value(schema, args, "arguments")
end

-- The session --------------------------------------------------------------

local function response(id, result)
  return { jsonrpc = "2.0", id = id, result = result }
end

local function error_response(id, code, message)
  return { jsonrpc = "2.0", id = id == nil and json.null or id, error = { code = code, message = message } }
end

local function tool_error(message)
  return { content = json.array({ { type = "text", text = M.text(message) } }), isError = true }
end

-- The message of a tool's failure: a structured error's own, or a bug's
-- with its line (so it can be reported).
local function failure_text(e)
  if errors.is(e) then
    return (e.code and (e.code .. ": ") or "") .. errors.message(e)
  end
  return "internal error: " .. tostring(e)
end

--- A protocol session. `opts.tools` is the list `tools()` gives (or
-- test doubles of the same shape), `opts.context` is what each tool's
-- run(args, ctx) gets as ctx, `opts.server_info` { name, version },
-- `opts.notify(message)` sends a notification (progress) while a tool runs.
-- `s:handle(line)` takes one line of input and returns the reply's JSON
-- text, or nil when none is due (notifications, responses, blank lines).
function M.session(opts)
  local s = { initialized = false, protocol = nil, cancelled = {} }
  local by_name = {}
  for _, t in ipairs(opts.tools) do
    by_name[t.name] = t
  end

  local function list_tools()
    local out = {}
    for _, t in ipairs(opts.tools) do
      out[#out + 1] = {
        name = t.name,
        title = t.title,
        description = t.description,
        inputSchema = t.input_schema,
        annotations = t.annotations,
      }
    end
    return { tools = json.array(out) }
  end

  local function call_tool(id, params)
    if type(params.name) ~= "string" then
      return error_response(id, INVALID_PARAMS, "tools/call needs params.name, a string")
    end
    local tool = by_name[params.name]
    if not tool then
      return error_response(id, INVALID_PARAMS, "unknown tool '" .. params.name .. "'")
    end
    local args = params.arguments
    if args == nil or args == json.null then
      args = {}
    end
    if type(args) ~= "table" or json_type(args) == "array" then
      return error_response(id, INVALID_PARAMS, "tools/call params.arguments must be an object")
    end
    local why = M.check_arguments(tool.input_schema, args)
    if why then
      return response(id, tool_error("invalid arguments for " .. tool.name .. ": " .. why))
    end
    -- A request that carries a progress token gets notifications/progress
    -- while its tool runs (a create's stages): clients that reset their
    -- request timeout on progress then wait out a slow boot.
    local meta = params._meta
    local token = type(meta) == "table" and meta.progressToken or nil
    local ctx = opts.context
    if ctx and opts.notify and (type(token) == "string" or math.type(token) == "integer") then
      local n = 0
      ctx.progress = function(message)
        n = n + 1
        opts.notify({ jsonrpc = "2.0", method = "notifications/progress",
          params = { progressToken = token, progress = n, message = M.text(message) } })
      end
    end
    local ok, result = pcall(tool.run, args, ctx)
    if ctx then
      ctx.progress = nil
    end
    if not ok then
      -- Ctrl-C or SIGTERM during a tool: the session ends (serve cleans up)
      if errors.is(result) and result.code == "ECANCELED" and sys.interrupted() then
        error(result, 0)
      end
      require("banger.log").warn("mcp", "tool " .. tool.name .. " failed: " .. failure_text(result))
      return response(id, tool_error(failure_text(result)))
    end
    return response(id, result)
  end

  local handlers = {
    initialize = function(id, params)
      local asked = params.protocolVersion
      if type(asked) ~= "string" then
        return error_response(id, INVALID_PARAMS, "initialize needs params.protocolVersion, a string")
      end
      s.protocol = M.protocol_versions[1]
      for _, v in ipairs(M.protocol_versions) do
        if v == asked then
          s.protocol = v
        end
      end
      s.client = type(params.clientInfo) == "table" and params.clientInfo or nil
      return response(id, {
        protocolVersion = s.protocol,
        capabilities = { tools = { listChanged = false } },
        serverInfo = opts.server_info,
        instructions = opts.instructions,
      })
    end,
    ping = function(id)
      return response(id, {})
    end,
    ["tools/list"] = function(id)
      return response(id, list_tools())
    end,
    ["tools/call"] = call_tool,
  }

  local notifications = {
    ["notifications/initialized"] = function()
      s.initialized = true
    end,
    -- Requests run one at a time, each to its end before the next line is
    -- read: by the time a cancellation is read its request has been
    -- answered, so there is nothing left to stop (the spec lets a server
    -- ignore one it cannot honour).
    ["notifications/cancelled"] = function() end,
  }

  local function dispatch(msg)
    if json_type(msg) ~= "object" then
      return error_response(nil, INVALID_REQUEST, "a message is a JSON object (batches are not supported)")
    end
    local id = msg.id
    local has_id = id ~= nil
    if has_id and type(id) ~= "string" and math.type(id) ~= "integer" then
      return error_response(nil, INVALID_REQUEST, "id must be a string or an integer")
    end
    if msg.jsonrpc ~= "2.0" then
      return error_response(id, INVALID_REQUEST, "jsonrpc must be \"2.0\"")
    end
    if msg.method == nil then
      if has_id and (msg.result ~= nil or msg.error ~= nil) then
        return nil -- a response: this server sends no requests, so it expects none
      end
      return error_response(id, INVALID_REQUEST, "a request needs a method")
    end
    if type(msg.method) ~= "string" then
      return error_response(id, INVALID_REQUEST, "method must be a string")
    end
    local params = msg.params
    if params == nil then
      params = {}
    elseif json_type(params) ~= "object" and json_type(params) ~= "empty" then
      if has_id then
        return error_response(id, INVALID_PARAMS, "params must be an object")
      end
      return nil
    end
    if not has_id then
      local n = notifications[msg.method]
      if n then
        n(params)
      end
      return nil -- unknown notifications are ignored, as the spec asks
    end
    local h = handlers[msg.method]
    if not h then
      return error_response(id, METHOD_NOT_FOUND, "method not found: " .. msg.method)
    end
    return h(id, params)
  end

  function s:handle(line)
    if line:match("^%s*$") then
      return nil
    end
    local msg, err = json.decode(line)
    if msg == nil then
      return assert(json.encode(error_response(nil, PARSE_ERROR, "parse error: " .. tostring(err))))
    end
    local reply = dispatch(msg)
    if reply == nil then
      return nil
    end
    local text, why = json.encode(reply)
    if not text then
      return assert(json.encode(error_response(msg.id, INTERNAL_ERROR, "cannot encode the reply: " .. tostring(why))))
    end
    return text
  end

  return s
end

-- The process --------------------------------------------------------------

--- Reads lines from descriptor `fd`: `r:next(timeout_ms)` returns a line
-- (without its newline), false when `timeout_ms` passed without one, or
-- nil at end of input. A line longer than 64 MiB raises EFBIG.
function M.line_reader(fd)
  -- chunks read with no newline yet (a long message arrives in many),
  -- joined once its newline comes; `rest`: read bytes not yet scanned
  local pending, pending_len, rest = {}, 0, ""
  local eof = false
  local r = {}
  local function take(last)
    pending[#pending + 1] = last
    local line = table.concat(pending)
    pending, pending_len = {}, 0
    return (line:gsub("\r$", ""))
  end
  function r:next(timeout_ms)
    while true do
      local nl = rest:find("\n", 1, true)
      if nl then
        local last = rest:sub(1, nl - 1)
        rest = rest:sub(nl + 1)
        return take(last)
      end
      if #rest > 0 then
        pending[#pending + 1] = rest
        pending_len = pending_len + #rest
        rest = ""
      end
      if eof then
        return pending_len > 0 and take("") or nil
      end
      if pending_len > MAX_LINE then
        errors.raise("EFBIG", "a message longer than 64 MiB")
      end
      local data, msg, code = sys.read(fd, 65536, timeout_ms)
      if data == nil then
        if code == "ETIMEDOUT" then
          return false
        end
        errors.raise(code or "EIO", msg or "cannot read standard input")
      end
      if data == "" then
        eof = true
      else
        rest = data
      end
    end
  end
  return r
end

--- Serves MCP on standard input and output until the input ends or
-- SIGINT/SIGTERM arrives, then deletes the session's sandboxes (those not
-- kept). `opts.context` is the tools' context (banger.mcp_sandboxes);
-- returns the process exit status.
function M.serve(opts)
  local ctx = opts.context
  local in_fd, out_fd = sys.claim_stdio()
  local session = M.session({ tools = opts.tools, context = ctx, server_info = opts.server_info,
    instructions = opts.instructions,
    notify = function(message)
      assert(sys.write(out_fd, assert(json.encode(message)) .. "\n"))
    end })
  local reader = M.line_reader(in_fd)
  local status = 0
  local ok, e = pcall(function()
    while true do
      local line = reader:next(ctx:next_idle_ms())
      if line == nil then
        return
      end
      if line == false then
        ctx:reap_idle()
      else
        local reply = session:handle(line)
        if reply then
          assert(sys.write(out_fd, reply .. "\n"))
        end
        ctx:reap_idle()
      end
    end
  end)
  if not ok then
    if errors.is(e) and e.code == "ECANCELED" then
      status = errors.interrupt_status()
      -- the natives answer ECANCELED while the interrupt is pending: clear
      -- it so the cleanup below can run (a second signal interrupts it)
      sys.clear_interrupt()
    else
      status = 1
      io.stderr:write("banger mcp: ", errors.message(e), "\n")
    end
  end
  ctx:close()
  return status
end

return M
